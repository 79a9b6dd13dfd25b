//! Access in-process: what keys may be made, which routes keys and the admin
//! token open, and whose jobs a key may read.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{ADMIN, Api};

#[tokio::test]
async fn operators_jobs_are_for_operators_only() {
    let app = Api::fresh().await;
    let (full, tenant) = app.tenant().await;
    let (status, job) = app
        .post("/v1/admin/dead/replay", ADMIN, json!({ "tenant": tenant }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let path = format!("/v1/jobs/{}", job["id"].as_str().expect("id"));
    let (status, _) = app.get(&path, &full).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a dead-letter replay is the operator's"
    );
    let (status, res) = app.get(&path, ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{res}");
}

#[tokio::test]
async fn keys_are_refused_bad_scopes_and_permissions() {
    let app = Api::fresh().await;
    for body in [
        json!({ "permissions": [] }),
        json!({ "permissions": ["everything"] }),
        json!({ "tenants": [] }),
        json!(["not", "an", "object"]),
    ] {
        let (status, res) = app.post("/v1/api-keys", ADMIN, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {res}");
    }
    let (status, res) = app
        .post(
            "/v1/api-keys",
            ADMIN,
            json!({ "tenants": ["no-such-tenant"] }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{res}");
    assert_eq!(app.count("api_keys").await, 0, "nothing half-written");
}

#[tokio::test]
async fn keys_and_the_admin_token_open_only_their_routes() {
    let app = Api::fresh().await;
    let key = app.producer_key().await;
    assert_eq!(app.get("/v1/tenants", ADMIN).await.0, StatusCode::OK);
    let (status, body) = app.get("/v1/tenants", &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get("/v1/api-keys", &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, body) = app.get("/v1/api-keys", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains(&key), "keys are never listed");
    let id = body["data"][0]["id"].as_str().expect("key id").to_string();

    let revoke = format!("/v1/api-keys/{id}");
    let (status, _) = app.delete(&revoke, ADMIN).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/v1/tenants", &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "refused at once: {body}");
    let (status, body) = app.delete(&revoke, ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
