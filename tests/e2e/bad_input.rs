//! Refused ingest leaves nothing behind: no event is stored, routed or delivered.
//! (The full table of bad input and its error shapes runs in-process, in
//! `gateway/tests/requests.rs`.)

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Receiver, Subscriber, TestApp};

#[tokio::test]
async fn refused_events_are_never_routed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let events = format!("/v1/tenants/{tenant}/events");
    let big = "x".repeat(70 * 1024);
    let refused: [(&str, Value, StatusCode); 5] = [
        (
            events.as_str(),
            json!({ "event_type": "order..created", "payload": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            events.as_str(),
            json!({ "event_type": "a", "payload": big }),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            events.as_str(),
            json!({ "event_type": "a", "payload": {}, "idempotency_key": "k\0" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &format!("{events}/batch"),
            json!({ "events": [{ "event_type": "ok", "payload": 1 }, { "event_type": "", "payload": 1 }] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/tenants/nobody/events",
            json!({ "event_type": "a", "payload": 1 }),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, status) in refused {
        let (got, body) = app.post(path, &key, body).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    // A good event sent last is routed after anything the bad ones could have queued.
    let good = app
        .event(&key, &tenant, json!({ "event_type": "a", "payload": 1 }))
        .await;
    app.settled_deliveries(&key, &tenant, &good, 1).await;
    assert_eq!(app.count("events").await, 1);
    assert_eq!(app.count("deliveries").await, 1);
    assert_eq!(receiver.wait_for(1).await.len(), 1);
}
