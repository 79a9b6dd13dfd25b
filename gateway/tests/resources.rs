//! The management API in-process: keys shown once and stored hashed, tenants by
//! id or uid, endpoints read, changed and deleted, pages newest first.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{ADMIN, Api};

#[tokio::test]
async fn api_keys_are_shown_once_and_stored_hashed() {
    let app = Api::fresh().await;
    let key = app.producer_key().await;
    assert!(key.starts_with("hr_"));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_one(app.store().pool())
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
        .post_raw("/v1/api-keys", Some(ADMIN), "application/json", Vec::new())
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an empty body makes an unnamed key: {body}"
    );
}

#[tokio::test]
async fn tenants_are_addressable_by_id_or_uid() {
    let app = Api::fresh().await;
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
    let app = Api::fresh().await;
    let (key, tenant) = app.tenant().await;
    let secret = hookrelay_signature::Secret::from_bytes(vec![7u8; 32])
        .expect("secret")
        .to_whsec();
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
        .fetch_one(app.store().pool())
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
    let app = Api::fresh().await;
    let (key, tenant) = app.tenant().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = app
            .endpoint(&key, &tenant, &format!("https://example.com/{n}"))
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
