//! `/metrics`: the Prometheus text with every declared metric, counters that match
//! what happened, and no label that names a tenant, endpoint, event or delivery.

use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp, eventually, free_port};

/// The value of the sample `name{labels…}` (labels in any order), if present.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

/// Reads `/metrics` until `ready` holds for it.
pub(crate) async fn metrics_when(app: &TestApp, ready: impl Fn(&str) -> bool) -> String {
    eventually("the metrics", || async {
        let res = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/plain; version=0.0.4")),
            "{:?}",
            res.headers()
        );
        let text = res.text().await.expect("text");
        if ready(&text) { Ok(text) } else { Err(text) }
    })
    .await
}

#[tokio::test]
async fn metrics_count_what_happened_without_ids_in_labels() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let event = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": {"n": 1} }),
        )
        .await;
    receiver.wait_for(1).await;
    let deliveries = app.settled_deliveries(&key, &tenant, &event, 1).await;

    let text = metrics_when(&app, |t| {
        sample(
            t,
            "hookrelay_delivery_outcomes_total",
            &[("outcome", "delivered")],
        ) == Some(1.0)
            && sample(t, "hookrelay_deliveries_due", &[]).is_some()
            && sample(t, "hookrelay_queue_messages", &[("queue", "ingest")]).is_some()
    })
    .await;
    for (name, labels, value) in [
        ("hookrelay_events_accepted_total", vec![], 1.0),
        ("hookrelay_events_routed_total", vec![], 1.0),
        ("hookrelay_deliveries_created_total", vec![], 1.0),
        (
            "hookrelay_attempt_duration_seconds_count",
            vec![("status_class", "2xx")],
            1.0,
        ),
        ("hookrelay_delivery_latency_seconds_count", vec![], 1.0),
        (
            "hookrelay_http_requests_total",
            vec![
                ("route", "/v1/tenants/{tenant}/events"),
                ("method", "POST"),
                ("status", "202"),
            ],
            1.0,
        ),
        ("hookrelay_shards_held", vec![], 2.0),
        (
            "hookrelay_build_info",
            vec![("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        ),
    ] {
        assert_eq!(
            sample(&text, name, &labels),
            Some(value),
            "{name} {labels:?}:\n{text}"
        );
    }
    for name in [
        "hookrelay_http_request_duration_seconds_count",
        "hookrelay_broker_publish_confirm_seconds_count",
        "hookrelay_oldest_undelivered_age_seconds",
        "hookrelay_dead_deliveries",
        "hookrelay_broker_dead_letters",
        "hookrelay_open_circuits",
        "hookrelay_paused_backlog",
        "hookrelay_ordered_head_age_seconds",
        "hookrelay_db_pool_connections",
    ] {
        assert!(
            sample(&text, name, &[]).is_some(),
            "{name} missing:\n{text}"
        );
    }
    assert!(
        text.contains("# HELP hookrelay_delivery_latency_seconds"),
        "{text}"
    );
    let delivery = deliveries[0]["id"].as_str().expect("id");
    for id in [tenant.as_str(), endpoint.as_str(), event.as_str(), delivery] {
        assert!(!text.contains(id), "an id is in a label: {id}");
    }
}

#[tokio::test]
async fn a_dispatcher_alone_serves_its_metrics_on_the_metrics_address() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let port = free_port();
    let _dispatcher = app
        .dispatcher_command()
        .env("HOOKRELAY_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .spawn()
        .expect("start hookrelay dispatcher");
    app.event(&key, &tenant, json!({ "event_type": "x", "payload": {} }))
        .await;
    receiver.wait_for(1).await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = eventually(format!("a delivered outcome at {url}"), || async {
        let text = match app.http.get(&url).send().await {
            Ok(res) => res.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let delivered = [("outcome", "delivered")];
        match sample(&text, "hookrelay_delivery_outcomes_total", &delivered) {
            Some(1.0) => Ok(text),
            _ => Err(text),
        }
    })
    .await;
    assert_eq!(
        sample(&text, "hookrelay_events_routed_total", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "hookrelay_events_accepted_total", &[]),
        None,
        "the gateway's, not its: {text}"
    );
}

/// The per-minute rollup the console's charts draw counts each attempt once, by
/// outcome and in one latency bucket.
#[tokio::test]
async fn the_rollup_counts_outcomes_and_latency_for_the_charts() {
    let app = TestApp::builder()
        .config(|c| c.retry.max_attempts = Some(1))
        .start()
        .await;
    let ok = Receiver::start().await;
    let failing = Receiver::replying(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&ok.url).await;
    app.endpoint(&key, &tenant, &failing.url, None).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": {} }))
        .await;
    app.settled_deliveries(&key, &tenant, &event, 2).await;
    let (ok_n, total, dead, bucketed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT sum(ok)::int8, sum(total)::int8, sum(dead)::int8,
                (SELECT sum(x)::int8 FROM endpoint_health_minutes, unnest(latency) AS x)
         FROM endpoint_health_minutes",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("rollup");
    assert_eq!((ok_n, total, dead, bucketed), (1, 2, 1, 2));
    let fleet = app
        .store
        .attempt_bins(hookrelay_core::store::Scope::Fleet, 60, 1)
        .await
        .expect("bins");
    assert_eq!(fleet.iter().map(|b| b.total).sum::<i64>(), 2);
    assert_eq!(
        fleet
            .iter()
            .map(|b| b.latency.iter().sum::<i64>())
            .sum::<i64>(),
        2
    );
}
