//! The management API: keys, tenants (by id or uid), endpoints, pagination, isolation.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Receiver, TestApp};

#[tokio::test]
async fn api_keys_are_shown_once_and_stored_hashed() {
    let app = TestApp::spawn_with(|_| {}, false).await;
    let key = app.producer_key().await;
    assert!(key.starts_with("hr_"));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_one(app.store.pool())
        .await
        .expect("row");
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&key[3..]));
    // The key works; the admin token is needed to make keys.
    assert_eq!(
        app.post("/v1/tenants", &key, json!({ "name": "A" }))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post("/v1/api-keys", &key, json!({})).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = app
        .post_raw(
            "/v1/api-keys",
            Some(ADMIN_TOKEN),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an empty body makes an unnamed key: {body}"
    );
}

#[tokio::test]
async fn tenants_are_addressable_by_id_or_uid() {
    let app = TestApp::spawn_with(|_| {}, false).await;
    let key = app.producer_key().await;
    let (status, t) = app
        .post(
            "/v1/tenants",
            &key,
            json!({ "name": "Acme", "uid": "acme-1" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = t["id"].as_str().expect("id");
    let (_, by_uid) = app.get("/v1/tenants/acme-1", &key).await;
    let (_, by_id) = app.get(&format!("/v1/tenants/{id}"), &key).await;
    assert_eq!(by_uid["id"], id);
    assert_eq!(by_id["uid"], "acme-1");
    let (status, endpoint) = app
        .post(
            "/v1/tenants/acme-1/endpoints",
            &key,
            json!({ "url": "https://example.com/h" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(endpoint["tenant_id"], id);
}

#[tokio::test]
async fn endpoints_can_be_read_changed_and_deleted() {
    let app = TestApp::spawn_with(|_| {}, false).await;
    let (key, tenant) = app.tenant().await;
    let secret = format!("whsec_{}", crate::helpers::b64(&[7u8; 32]));
    let (status, created) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            &key,
            json!({ "url": "https://example.com/a", "event_types": ["order.*"], "description": "orders", "secret": secret }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["secret"], secret.as_str());
    let id = created["id"].as_str().expect("id");
    let path = format!("/v1/tenants/{tenant}/endpoints/{id}");

    let (_, shown) = app.get(&path, &key).await;
    assert_eq!(shown["description"], "orders");
    assert!(
        shown.get("secret").is_none(),
        "the secret is not part of the endpoint view"
    );
    let (_, revealed) = app.get(&format!("{path}/secret"), &key).await;
    assert_eq!(revealed["secret"], secret.as_str());
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_ciphertext FROM endpoints")
        .fetch_one(app.store.pool())
        .await
        .expect("row");
    assert!(
        !stored.windows(32).any(|w| w == [7u8; 32]),
        "the secret is encrypted at rest"
    );

    let (status, patched) = app
        .patch(
            &path,
            &key,
            json!({ "url": "https://example.com/b", "event_types": null, "disabled": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["url"], "https://example.com/b");
    assert!(patched["event_types"].is_null());
    assert_eq!(patched["disabled"], true);
    assert_eq!(patched["description"], "orders", "fields not sent are kept");

    assert_eq!(app.delete(&path, &key).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &key).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path, &key).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_page_newest_first_with_a_cursor() {
    let app = TestApp::spawn_with(|_| {}, false).await;
    let (key, tenant) = app.tenant().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let (id, _) = app
            .endpoint(&key, &tenant, &format!("https://example.com/{n}"), None)
            .await;
        ids.push(id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = format!("/v1/tenants/{tenant}/endpoints?limit=2");
    loop {
        let (status, page) = app.get(&path, &key).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|e| e["id"].as_str().expect("id").to_string()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/tenants/{tenant}/endpoints?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

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
    let app = TestApp::spawn_with(|c| c.security.allow_private_targets = false, false).await;
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
    let (key, tenant, _) = app.subscriber(&live.url).await;
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
