//! Logging setup: `tracing` to stderr, filtered by `HOOKRELAY_LOG`, as text for
//! people or as one JSON object per line (`HOOKRELAY_LOG_FORMAT=json`) with the
//! fields of the spans around it (request id, tenant, event, delivery, endpoint).

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// The filter when none is configured.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,lapin=warn";

/// Installs the global subscriber once; later calls are no-ops.
pub fn init(log: &LogSettings) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&log.filter))
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

/// For tests: text, filtered by `HOOKRELAY_LOG` if set.
pub fn init_from_env() {
    init(&LogSettings {
        filter: std::env::var("HOOKRELAY_LOG").unwrap_or_else(|_| DEFAULT_FILTER.into()),
        format: LogFormat::Text,
    });
}
