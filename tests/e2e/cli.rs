//! The `hookrelay` binary's settings: `--help` lists every declared one with its
//! default, `config` shows the values in effect with secrets masked, and a bad
//! value stops it with the setting's name.

use hookrelay_core::Config;
use tokio::process::Command;

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// Runs the binary with only these settings in its environment.
async fn hookrelay(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run hookrelay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn help_lists_every_setting_and_config_prints_them_masked() {
    let (code, help, _) = hookrelay(&["--help"], &[]).await;
    assert_eq!(code, 0);
    let names: Vec<String> = Config::command()
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names.len(), 66);
    for name in &names {
        assert!(help.contains(name.as_str()), "--help does not list {name}");
    }
    assert!(help.contains("[default: 15s]"), "defaults are shown");

    let token = "an-operator-token-nobody-may-see";
    let (code, out, err) = hookrelay(
        &["--queue-prefix", "cli-test", "config"],
        &[
            ("HOOKRELAY_ENCRYPTION_KEY", KEY),
            ("HOOKRELAY_ADMIN_TOKEN", token),
            ("HOOKRELAY_SHARDS", " 4 "),
            ("HOOKRELAY_QUEUE_PREFIX", "overridden-by-the-flag"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    for name in &names {
        assert!(
            out.contains(&format!("{name}=")),
            "config does not print {name}"
        );
    }
    assert!(out.contains("HOOKRELAY_SHARDS=4  # environment"), "{out}");
    assert!(
        out.contains("HOOKRELAY_QUEUE_PREFIX=cli-test  # command line"),
        "{out}"
    );
    assert!(
        out.contains("HOOKRELAY_DELIVERY_TIMEOUT=15s  # default"),
        "{out}"
    );
    assert!(out.contains("HOOKRELAY_ADMIN_TOKEN=***"), "{out}");
    assert!(
        !out.contains(token) && !out.contains(KEY),
        "secrets are masked: {out}"
    );
}

#[tokio::test]
async fn a_bad_or_missing_setting_stops_the_binary_naming_it() {
    let (code, _, err) = hookrelay(
        &["config"],
        &[("HOOKRELAY_ENCRYPTION_KEY", KEY), ("HOOKRELAY_SHARDS", "0")],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("invalid setting HOOKRELAY_SHARDS"), "{err}");
    let (code, _, err) = hookrelay(&["migrate"], &[]).await;
    assert_eq!(code, 2);
    assert!(err.contains("HOOKRELAY_ENCRYPTION_KEY"), "{err}");
}

#[tokio::test]
async fn plaintext_connections_off_this_machine_warn_at_start() {
    let remote = [
        ("HOOKRELAY_ENCRYPTION_KEY", KEY),
        (
            "HOOKRELAY_DATABASE_URL",
            "postgres://u:p@db.internal:5432/hookrelay",
        ),
        (
            "HOOKRELAY_AMQP_URL",
            "amqps://u:p@mq1.internal:5671/%2f,amqp://u:p@mq2.internal:5672/%2f",
        ),
    ];
    let (code, _, err) = hookrelay(&["config"], &remote).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("database connection may be unencrypted"),
        "{err}"
    );
    assert!(err.contains("db.internal:5432"), "{err}");
    assert!(
        err.contains("mq2.internal:5672"),
        "the plaintext node: {err}"
    );
    assert!(
        !err.contains("mq1.internal"),
        "the amqps:// node is fine: {err}"
    );

    let encrypted = [
        ("HOOKRELAY_ENCRYPTION_KEY", KEY),
        (
            "HOOKRELAY_DATABASE_URL",
            "postgres://u:p@db.internal/h?sslmode=verify-full",
        ),
        ("HOOKRELAY_AMQP_URL", "amqps://u:p@mq1.internal:5671/%2f"),
    ];
    let (code, _, err) = hookrelay(&["config"], &encrypted).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("unencrypted"), "{err}");
}

#[tokio::test]
async fn tls_files_are_read_and_checked_at_start() {
    let (code, _, err) = hookrelay(
        &["config"],
        &[
            ("HOOKRELAY_ENCRYPTION_KEY", KEY),
            ("HOOKRELAY_AMQP_CA_FILE", "/nonexistent/ca.pem"),
        ],
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid setting HOOKRELAY_AMQP_CA_FILE"),
        "{err}"
    );
    assert!(err.contains("cannot read /nonexistent/ca.pem"), "{err}");

    let (code, _, err) = hookrelay(
        &["config"],
        &[
            ("HOOKRELAY_ENCRYPTION_KEY", KEY),
            ("HOOKRELAY_DATABASE_CA_FILE", "/etc/hostname"),
        ],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("holds no PEM block"), "{err}");

    let (code, _, err) = hookrelay(
        &["config"],
        &[
            ("HOOKRELAY_ENCRYPTION_KEY", KEY),
            (
                "HOOKRELAY_AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f,http://x",
            ),
        ],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("invalid setting HOOKRELAY_AMQP_URL"), "{err}");
}

#[test]
fn the_readme_configuration_table_lists_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    for arg in Config::command().get_arguments() {
        if let Some(env) = arg.get_env() {
            let name = env.to_string_lossy();
            assert!(
                table.contains(&format!("`{name}`")),
                "README's table lacks {name}"
            );
        }
    }
}
