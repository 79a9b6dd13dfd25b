//! Command-line options of the load generator.

use std::time::Duration;

use clap::Args;

use crate::behaviour::BehaviourSpec;

#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Base URL of a running hookrelay API; several, comma-separated, spread the
    /// requests round-robin over gateways of one installation (setup uses the first).
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    pub api: Vec<String>,
    /// Admin token of that hookrelay (creates the producer key).
    #[arg(long, env = "HOOKRELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Events to send.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Fixed rate in events per second (latency then counts from the intended send time).
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<u64>,
    /// Fixed number of requests in flight (default when no --rate is given).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Events per request: 1 posts to /events, more to /events/batch.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Tenants the events are spread over.
    #[arg(long, default_value_t = 1)]
    pub tenants: usize,
    /// Endpoints per tenant.
    #[arg(long, default_value_t = 10)]
    pub endpoints: usize,
    /// Endpoints each event goes to (must divide --endpoints).
    #[arg(long, default_value_t = 2)]
    pub fanout: usize,
    /// Approximate size of each event's JSON payload.
    #[arg(long, default_value_t = 512)]
    pub payload_bytes: usize,
    /// Seconds to wait for deliveries after the last event was accepted.
    #[arg(long, default_value_t = 120)]
    pub deadline: u64,
    /// Receiver ports (endpoints are spread over them).
    #[arg(long, default_value_t = 1)]
    pub receiver_ports: usize,
    /// Receiver behaviour for some endpoints, repeatable: `RANGE:KIND[=ARG]` where RANGE is an
    /// endpoint index or `a-b` (indexes count across tenants) and KIND is one of
    /// `fail=FRACTION` (500s), `flaky=FRACTION` (500s, yet every delivery is
    /// expected through retries), `timeout=FRACTION` (never answers in time), `slow=MS`,
    /// `throttle=PER_SECOND` (429 with Retry-After beyond that rate), `gone` (410),
    /// `blackhole` (accepts the connection, never answers).
    #[arg(long = "behave", value_name = "SPEC")]
    pub behaviours: Vec<BehaviourSpec>,
    /// Extra fields for every endpoint the run creates, as a JSON object (e.g.
    /// `{"ordering": "strict"}` or `{"filter": {...}}`).
    #[arg(long, value_parser = endpoint_fields)]
    pub endpoint_json: Option<serde_json::Map<String, serde_json::Value>>,
    /// Sample this process's memory (the gateway's pid) and report its peak.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl Options {
    /// The API a request goes to (round-robin over `--api`).
    pub fn api_for(&self, request: u64) -> &str {
        self.api[(request % self.api.len() as u64) as usize].trim_end_matches('/')
    }

    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.deadline)
    }

    /// Checks the combination of flags.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.api.is_empty(), "--api needs a URL");
        anyhow::ensure!(self.events > 0, "--events must be at least 1");
        anyhow::ensure!(
            self.tenants > 0 && self.endpoints > 0,
            "--tenants and --endpoints must be at least 1"
        );
        anyhow::ensure!(
            self.fanout >= 1
                && self.fanout <= self.endpoints
                && self.endpoints.is_multiple_of(self.fanout),
            "--fanout must divide --endpoints"
        );
        anyhow::ensure!(
            (1..=1000).contains(&self.batch),
            "--batch must be 1 to 1000"
        );
        anyhow::ensure!(
            self.receiver_ports >= 1,
            "--receiver-ports must be at least 1"
        );
        anyhow::ensure!(self.rate != Some(0), "--rate must be positive");
        Ok(())
    }

    /// Event types: each is subscribed by exactly `fanout` endpoints of a tenant.
    pub fn event_types(&self) -> usize {
        self.endpoints / self.fanout
    }
}

fn endpoint_fields(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields),
        Ok(_) => Err("--endpoint-json must be a JSON object".into()),
        Err(e) => Err(format!("--endpoint-json is not JSON: {e}")),
    }
}
