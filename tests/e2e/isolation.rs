//! Isolation against real services: a slow endpoint lets go of its shard's messages
//! (its requests are leased in Postgres) and, once it has its fill of slow requests,
//! its further deliveries are parked instead of taking request slots.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp};

/// Open deliveries of the endpoint `$1` that have a time set and no attempt yet:
/// leased while their request is open, or parked.
/// Deliveries not attempted yet whose slow request was leased, or that were parked.
const WAITING_UNATTEMPTED: &str = "SELECT count(*) FROM deliveries
     WHERE endpoint_id = $1 AND status = 'pending' AND attempts = 0
       AND updated_at > created_at";

async fn endpoint_with_timeout(app: &TestApp, key: &str, tenant: &str, url: &str) -> String {
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            key,
            json!({ "url": url, "timeout_ms": 20_000 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_slow_request_does_not_hold_its_shard_message() {
    // One shard and one unacked message at a time: anything held blocks everything.
    let app = TestApp::builder()
        .config(|c| {
            c.broker.shards = 1;
            c.broker.delivery_prefetch = 1;
        })
        .start()
        .await;
    let healthy = Receiver::start().await;
    let stuck = Receiver::slow(Duration::from_secs(60)).await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&healthy.url).await;
    let slow = endpoint_with_timeout(&app, &key, &tenant, &stuck.url).await;

    app.event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
        .await;
    healthy.wait_for(1).await;
    // The stuck request turns slow and is leased instead of holding the message.
    app.wait_for_count(WAITING_UNATTEMPTED, &slow, 1).await;

    app.event(&key, &tenant, json!({ "event_type": "b", "payload": {} }))
        .await;
    healthy.wait_for(2).await;
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = $1::uuid")
            .bind(&slow)
            .fetch_one(app.store.pool())
            .await
            .expect("count");
    assert_eq!(
        attempts, 0,
        "the second event went out while the first stuck request was still open"
    );
    app.wait_for_count(WAITING_UNATTEMPTED, &slow, 2).await;
}

#[tokio::test]
async fn an_endpoint_with_its_fill_of_slow_requests_is_parked() {
    let app = TestApp::builder()
        .config(|c| c.delivery.endpoint_max_slow_requests = 2)
        .start()
        .await;
    let stuck = Receiver::slow(Duration::from_secs(60)).await;
    let (key, tenant) = app.tenant().await;
    let slow = endpoint_with_timeout(&app, &key, &tenant, &stuck.url).await;

    for i in 0..2 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "a", "payload": { "i": i } }),
        )
        .await;
    }
    app.wait_for_count(WAITING_UNATTEMPTED, &slow, 2).await;
    for i in 2..6 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "a", "payload": { "i": i } }),
        )
        .await;
    }
    // The four later ones are parked without being sent and without an attempt.
    app.wait_for_count(WAITING_UNATTEMPTED, &slow, 6).await;
    assert_eq!(stuck.max_concurrency(), 2, "only the first two were sent");
    assert_eq!(app.count("attempts").await, 0);
}
