//! The management API: keys, tenants (by id or uid), endpoints, pagination, isolation.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp};

#[tokio::test]
async fn a_tenant_cannot_reach_another_tenants_data() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, a) = app.tenant().await;
    let (_, b) = app
        .post("/v1/tenants", &key, json!({ "name": "Other" }))
        .await;
    let b = b["id"].as_str().expect("id");
    let (endpoint, _) = app.endpoint(&key, &a, &receiver.url, None).await;
    let event = app
        .event(&key, &a, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let delivery = app.settled_deliveries(&key, &a, &event, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    for path in [
        format!("/v1/tenants/{b}/endpoints/{endpoint}"),
        format!("/v1/tenants/{b}/endpoints/{endpoint}/secret"),
        format!("/v1/tenants/{b}/events/{event}"),
        format!("/v1/tenants/{b}/events/{event}/deliveries"),
        format!("/v1/tenants/{b}/deliveries/{delivery}"),
        format!("/v1/tenants/{b}/deliveries/{delivery}/attempts"),
    ] {
        let (status, body) = app.get(&path, &key).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert_eq!(
        app.delete(&format!("/v1/tenants/{b}/endpoints/{endpoint}"), &key)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, listed) = app.get(&format!("/v1/tenants/{b}/deliveries"), &key).await;
    assert_eq!(listed["data"].as_array().expect("data").len(), 0);
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let app = TestApp::builder()
        .config(|c| c.security.allow_private_targets = false)
        .without_dispatcher()
        .start()
        .await;
    let (key, tenant) = app.tenant().await;
    for url in [
        "http://127.0.0.1:9/h",
        "http://localhost/h",
        "http://10.0.0.1/h",
        "http://169.254.169.254/",
        "http://[::1]/",
    ] {
        let (status, body) = app
            .post(
                &format!("/v1/tenants/{tenant}/endpoints"),
                &key,
                json!({ "url": url }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains("private"),
            "{body}"
        );
    }
    assert_eq!(app.count("endpoints").await, 0);
}

#[tokio::test]
async fn disabled_and_deleted_endpoints_receive_nothing_new() {
    let app = TestApp::spawn().await;
    let (live, disabled, deleted) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&live.url).await;
    let (d, _) = app.endpoint(&key, &tenant, &disabled.url, None).await;
    let (x, _) = app.endpoint(&key, &tenant, &deleted.url, None).await;
    app.patch(
        &format!("/v1/tenants/{tenant}/endpoints/{d}"),
        &key,
        json!({ "disabled": true }),
    )
    .await;
    app.delete(&format!("/v1/tenants/{tenant}/endpoints/{x}"), &key)
        .await;

    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let deliveries = app.settled_deliveries(&key, &tenant, &event, 1).await;
    assert_eq!(deliveries[0]["status"], "delivered");
    live.wait_for(1).await;
    assert!(disabled.received().is_empty() && deleted.received().is_empty());
}
