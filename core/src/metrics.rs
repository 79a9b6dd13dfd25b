//! Prometheus metrics: every metric's name, unit and help in one place, the
//! process-wide recorder, and the text `/metrics` answers with. Names follow the
//! Prometheus conventions (`hookrelay_` prefix, unit suffix, `_total` counters);
//! no label takes values that grow with data (no ids).

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// HTTP requests answered, by matched route, method and status.
pub const HTTP_REQUESTS: &str = "hookrelay_http_requests_total";
/// Time to answer an HTTP request, by matched route and method.
pub const HTTP_DURATION: &str = "hookrelay_http_request_duration_seconds";
/// Connections and requests the HTTP server cut short to protect itself, by
/// `reason`: `header_timeout`, `idle_timeout`, `body_budget`.
pub const HTTP_LIMITED: &str = "hookrelay_http_limited_total";
/// Events the gateway accepted (confirmed by the broker).
pub const EVENTS_ACCEPTED: &str = "hookrelay_events_accepted_total";
/// Of those, events the gateway published to the bulk ingest lane (their tenant
/// was far above its fair share while others were sending).
pub const EVENTS_BULK: &str = "hookrelay_events_bulk_lane_total";
/// Time from publishing a batch of messages to the broker's last confirm, by role.
pub const PUBLISH_CONFIRM: &str = "hookrelay_broker_publish_confirm_seconds";
/// Messages the broker refused or did not confirm in time, by role.
pub const PUBLISH_FAILURES: &str = "hookrelay_broker_publish_failures_total";
/// Events stored and fanned out by the router.
pub const EVENTS_ROUTED: &str = "hookrelay_events_routed_total";
/// Deliveries the router created (one per subscribed endpoint).
pub const DELIVERIES_CREATED: &str = "hookrelay_deliveries_created_total";
/// What became of each decision about a delivery: delivered, failed (a retry is
/// due), dead, parked (rate limit, concurrency cap, open circuit), cancelled.
pub const DELIVERY_OUTCOMES: &str = "hookrelay_delivery_outcomes_total";
/// Time of one HTTP attempt towards an endpoint, by status class (2xx … 5xx, none).
pub const ATTEMPT_DURATION: &str = "hookrelay_attempt_duration_seconds";
/// From the gateway accepting an event to one of its deliveries succeeding.
pub const DELIVERY_LATENCY: &str = "hookrelay_delivery_latency_seconds";
/// Deliveries due now and not sent yet (the scheduler's backlog), fleet-wide.
pub const DELIVERIES_DUE: &str = "hookrelay_deliveries_due";
/// Age of the oldest delivery not delivered yet (pending or failed), fleet-wide:
/// the lag to page on.
pub const OLDEST_UNDELIVERED: &str = "hookrelay_oldest_undelivered_age_seconds";
/// Dead deliveries in Postgres, fleet-wide.
pub const DEAD_DELIVERIES: &str = "hookrelay_dead_deliveries";
/// Messages in the broker's dead-letter queue.
pub const BROKER_DEAD_LETTERS: &str = "hookrelay_broker_dead_letters";
/// Endpoints whose circuit is open or half-open, fleet-wide.
pub const OPEN_CIRCUITS: &str = "hookrelay_open_circuits";
/// Deliveries held by paused endpoints, fleet-wide.
pub const PAUSED_BACKLOG: &str = "hookrelay_paused_backlog";
/// Age of the oldest head of an ordered endpoint (since its event was accepted),
/// fleet-wide: how long an order has been stuck.
pub const ORDERED_HEAD_AGE: &str = "hookrelay_ordered_head_age_seconds";
/// Messages ready in each queue, by queue kind (ingest, shard, dead) summed.
pub const QUEUE_MESSAGES: &str = "hookrelay_queue_messages";
/// Delivery shards this dispatcher consumes.
pub const SHARDS_HELD: &str = "hookrelay_shards_held";
/// Database connections of this process's pool, by state (in_use, idle).
pub const DB_CONNECTIONS: &str = "hookrelay_db_pool_connections";
/// Operational events published, by `type` (hookrelay.endpoint.failing, …).
pub const OPERATIONAL_EVENTS: &str = "hookrelay_operational_events_total";
/// Always 1, labelled with the version.
pub const BUILD_INFO: &str = "hookrelay_build_info";

/// Every metric above, for checks that name none that does not exist.
pub const ALL: [&str; 24] = [
    HTTP_REQUESTS,
    HTTP_DURATION,
    HTTP_LIMITED,
    EVENTS_ACCEPTED,
    EVENTS_BULK,
    PUBLISH_CONFIRM,
    PUBLISH_FAILURES,
    EVENTS_ROUTED,
    DELIVERIES_CREATED,
    DELIVERY_OUTCOMES,
    ATTEMPT_DURATION,
    DELIVERY_LATENCY,
    DELIVERIES_DUE,
    OLDEST_UNDELIVERED,
    DEAD_DELIVERIES,
    BROKER_DEAD_LETTERS,
    OPEN_CIRCUITS,
    PAUSED_BACKLOG,
    ORDERED_HEAD_AGE,
    QUEUE_MESSAGES,
    SHARDS_HELD,
    DB_CONNECTIONS,
    OPERATIONAL_EVENTS,
    BUILD_INFO,
];

/// Histogram buckets, in seconds: from a millisecond to ten minutes.
const BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use; its histograms are folded into
/// buckets every few seconds (needs a Tokio runtime the first time).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        describe();
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let upkeep = handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}

/// The media type of `render`'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics in the Prometheus text format.
pub fn render() -> String {
    handle().render()
}

/// This process's database connections now, by state.
pub fn sample_pool(store: &crate::Store) {
    let pool = store.pool();
    let idle = pool.num_idle() as f64;
    gauge!(DB_CONNECTIONS, "state" => "idle").set(idle);
    gauge!(DB_CONNECTIONS, "state" => "in_use").set((f64::from(pool.size()) - idle).max(0.0));
}

/// `2xx` … `5xx`, or `none` when no response came.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "none",
    }
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by matched route, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by matched route and method."
    );
    describe_counter!(
        HTTP_LIMITED,
        "Connections closed for a slow request head or idleness, and requests refused for the body budget, by reason."
    );
    describe_counter!(
        EVENTS_ACCEPTED,
        "Events accepted by the gateway (confirmed by the broker)."
    );
    describe_counter!(
        EVENTS_BULK,
        "Accepted events published to the bulk ingest lane (a tenant far above its share)."
    );
    describe_histogram!(
        PUBLISH_CONFIRM,
        Unit::Seconds,
        "From publishing a batch to the broker's last confirm, by role."
    );
    describe_counter!(
        PUBLISH_FAILURES,
        "Messages the broker refused or did not confirm in time, by role."
    );
    describe_counter!(EVENTS_ROUTED, "Events stored and fanned out by the router.");
    describe_counter!(
        OPERATIONAL_EVENTS,
        "Operational events published (one per receiving tenant), by type."
    );
    describe_counter!(DELIVERIES_CREATED, "Deliveries created by the router.");
    describe_counter!(
        DELIVERY_OUTCOMES,
        "Decisions about deliveries: delivered, failed (retry due), dead, parked, cancelled, held (endpoint paused), retry_deferred (retry slots taken)."
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "Duration of one HTTP attempt, by response status class."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From the gateway accepting an event to a delivery of it succeeding."
    );
    describe_gauge!(
        DELIVERIES_DUE,
        "Deliveries due now and not sent yet (fleet-wide)."
    );
    describe_gauge!(
        OLDEST_UNDELIVERED,
        Unit::Seconds,
        "Age of the oldest pending or failed delivery (fleet-wide)."
    );
    describe_gauge!(DEAD_DELIVERIES, "Dead deliveries in Postgres (fleet-wide).");
    describe_gauge!(
        BROKER_DEAD_LETTERS,
        "Messages in the broker's dead-letter queue."
    );
    describe_gauge!(
        OPEN_CIRCUITS,
        "Endpoints whose circuit is open or half-open (fleet-wide)."
    );
    describe_gauge!(
        PAUSED_BACKLOG,
        "Deliveries held by paused endpoints (fleet-wide)."
    );
    describe_gauge!(
        ORDERED_HEAD_AGE,
        Unit::Seconds,
        "Age of the oldest head of an ordered endpoint, since its event was accepted (fleet-wide)."
    );
    describe_gauge!(
        QUEUE_MESSAGES,
        "Messages ready in the broker, by queue kind."
    );
    describe_gauge!(SHARDS_HELD, "Delivery shards this dispatcher consumes.");
    describe_gauge!(
        DB_CONNECTIONS,
        "Connections of this process's database pool, by state."
    );
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the version.");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dashboard and the alert rules name only metrics declared here (a
    /// histogram by its `_bucket`, `_count` or `_sum` series).
    #[test]
    fn the_dashboard_and_alerts_name_only_declared_metrics() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        for file in [
            "deploy/grafana/hookrelay.json",
            "deploy/prometheus/alerts.yml",
        ] {
            let text = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
            let mut named = 0;
            for (i, _) in text.match_indices("hookrelay_") {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if name == "hookrelay_" {
                    continue;
                }
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                assert!(
                    ALL.contains(&base),
                    "{file} names {name}, which is not declared"
                );
                named += 1;
            }
            assert!(named >= 8, "{file} names {named} metrics");
        }
    }

    #[test]
    fn names_follow_the_conventions() {
        for name in ALL {
            assert!(name.starts_with("hookrelay_"), "{name}");
            assert!(
                !name.ends_with("_total") || !name.contains("_seconds"),
                "{name}: a counter of seconds"
            );
        }
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(None), "none");
    }
}
