//! Logging and tracing: `tracing` to stderr, filtered by `HOOKRELAY_LOG`, as text
//! for people or one JSON object per line (`HOOKRELAY_LOG_FORMAT=json`) with the
//! fields of the spans around it; and, with `HOOKRELAY_OTLP_ENDPOINT`, hookrelay's
//! spans exported over OTLP/HTTP (JSON), one trace per event: the producer's
//! `traceparent` is honoured, and the event carries its trace context through the
//! broker and its row to routing and every attempt.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

pub use crate::config::DEFAULT_FILTER;
use crate::config::{LogFormat, LogSettings};

/// The crates whose spans are exported (at debug, whatever `HOOKRELAY_LOG` says).
const TRACED: [&str; 4] = [
    "hookrelay",
    "hookrelay_core",
    "hookrelay_gateway",
    "hookrelay_dispatcher",
];

/// What `init` set up; `shutdown` sends the spans still buffered.
#[must_use]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The exporter's HTTP client blocks: flush off the async threads.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the global subscriber once; later calls are no-ops.
pub fn init(log: &LogSettings) -> Telemetry {
    let fmt_layer = match log.format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(EnvFilter::new(&log.filter));
    let provider = log.otlp_endpoint.as_deref().and_then(|endpoint| {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build();
        match exporter {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name("hookrelay")
                            .build(),
                    )
                    .build(),
            ),
            Err(e) => {
                eprintln!("HOOKRELAY_OTLP_ENDPOINT: cannot export spans: {e}");
                None
            }
        }
    });
    let otel_layer = provider.as_ref().map(|p| {
        let traced = TRACED.iter().fold(Targets::new(), |t, target| {
            t.with_target(*target, LevelFilter::DEBUG)
        });
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("hookrelay"))
            .with_filter(traced)
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    Telemetry { provider }
}

/// For tests: text, filtered by `HOOKRELAY_LOG` if set; no export.
pub fn init_from_env() {
    let _ = init(&LogSettings {
        filter: std::env::var("HOOKRELAY_LOG").unwrap_or_else(|_| DEFAULT_FILTER.into()),
        format: LogFormat::Text,
        otlp_endpoint: None,
    });
}

/// `span`'s trace context as a W3C `traceparent`, when spans are exported.
pub fn traceparent_of(span: &Span) -> Option<String> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` (not yet entered) a child of the span `traceparent` names.
pub fn continue_from(span: &Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
}
