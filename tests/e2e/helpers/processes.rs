//! The real `hookrelay` binary as a subprocess: commands carrying a test's
//! settings, run to their end or started and awaited until ready.

use axum::http::StatusCode;
use hookrelay_core::Config;

use super::{PATIENCE, TestApp, amqp_url, b64, eventually, free_port};

impl TestApp {
    /// `hookrelay dispatcher` (the real binary) for this test's database, queues
    /// and key, delivering to loopback; killed when dropped. Add settings, then spawn.
    pub fn dispatcher_command(&self) -> tokio::process::Command {
        self.hookrelay_command("dispatcher")
    }

    /// `hookrelay ROLE` (the real binary) with this test's settings, as
    /// `dispatcher_command` describes.
    pub fn hookrelay_command(&self, role: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"));
        cmd.arg(role)
            .env("HOOKRELAY_DATABASE_URL", self.config.database.url.expose())
            .env("HOOKRELAY_AMQP_URL", amqp_url())
            .env("HOOKRELAY_QUEUE_PREFIX", &self.config.broker.queue_prefix)
            .env("HOOKRELAY_SHARDS", self.config.broker.shards.to_string())
            .env("HOOKRELAY_ENCRYPTION_KEYS", encryption_keys(&self.config))
            .env("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")
            .env("HOOKRELAY_LOG", "warn")
            .kill_on_drop(true);
        cmd
    }
}

/// Runs a command of the real binary to its end (within `PATIENCE`).
pub async fn run_to_end(cmd: &mut tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("the command ends by itself")
        .expect("the command runs")
}

/// What a finished command wrote to stderr.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts an HTTP role of the real binary (`serve`, `gateway`) on a free port and
/// waits until it is ready; returns the process (killed when dropped) and its URL.
pub async fn spawn_ready(mut cmd: tokio::process::Command) -> (tokio::process::Child, String) {
    let port = free_port();
    cmd.env("HOOKRELAY_LISTEN", format!("127.0.0.1:{port}"));
    let child = cmd.spawn().expect("start hookrelay");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually("hookrelay to get ready", || async {
        match http.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status() == StatusCode::OK => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    (child, base)
}

/// `HOOKRELAY_ENCRYPTION_KEYS` for the keys a test's config holds.
pub fn encryption_keys(config: &Config) -> String {
    config
        .security
        .master_keys()
        .iter()
        .map(|(id, key)| format!("{id}:{}", b64(key)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the browser test `console/browser/<script>` with node and `env`; fails the
/// test with what it printed unless it passes. `HOOKRELAY_SCREENSHOTS` passes on.
pub async fn browser_test(script: &str, env: &[(&str, &str)]) {
    let path = format!("{}/console/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut node = tokio::process::Command::new("node");
    node.arg(path).envs(env.iter().copied());
    if let Ok(dir) = std::env::var("HOOKRELAY_SCREENSHOTS") {
        node.env("CONSOLE_SCREENSHOTS", dir);
    }
    let out = node
        .output()
        .await
        .expect("run node (deploy/local/test.sh installs it)");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
