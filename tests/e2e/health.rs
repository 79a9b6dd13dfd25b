//! Liveness and readiness.

use axum::http::StatusCode;

use crate::helpers::{Subscriber, TestApp};

#[tokio::test]
async fn health_and_readiness_report_the_services() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let (status, body) = app.get("/healthz", "").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = app.get("/readyz", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["rabbitmq"], "ok");
}

#[tokio::test]
async fn readiness_names_an_unreachable_broker() {
    // Port 1 on loopback: nothing listens there.
    let app = TestApp::builder()
        .config(|c| {
            c.broker.amqp_url =
                hookrelay_core::config::Sensitive::new("amqp://guest:guest@127.0.0.1:1/%2f".into())
        })
        .without_dispatcher()
        .start()
        .await;
    let (status, body) = app.get("/readyz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    // The cause is logged; the unauthenticated caller only learns which part is down.
    assert_eq!(body["checks"]["rabbitmq"], "unreachable", "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("rabbitmq"),
        "{body}"
    );

    // Ingest cannot be confirmed, so it is refused with 503, never accepted.
    let (key, tenant) = app.tenant().await;
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/events"),
            &key,
            serde_json::json!({"event_type": "x", "payload": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
}

#[tokio::test]
async fn ingest_keeps_accepting_while_the_gateway_cannot_reach_postgres() {
    let app = TestApp::spawn().await;
    let receiver = crate::helpers::Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;

    app.cut_gateway_database().await;
    let (status, body) = app.get("/readyz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("postgres"),
        "{body}"
    );

    // Key and tenant come from memory; the event goes to the broker only.
    let event = app
        .event(
            &key,
            &tenant,
            serde_json::json!({ "event_type": "x", "payload": { "during": "outage" } }),
        )
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body.as_ref(), br#"{"during":"outage"}"#);
    // Reads need the database: a clear 503, not a hang or a 500.
    let (status, body) = app
        .get(&format!("/v1/tenants/{tenant}/events/{event}"), &key)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
}
