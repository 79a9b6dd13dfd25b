//! Access in-process: what keys may be made, and whose jobs a key may read.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use support::{ADMIN, Api};

#[sqlx::test(migrations = "../migrations")]
async fn operators_jobs_are_for_operators_only(pool: PgPool) {
    let app = Api::new(pool);
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

#[sqlx::test(migrations = "../migrations")]
async fn keys_are_refused_bad_scopes_and_permissions(pool: PgPool) {
    let app = Api::new(pool);
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
