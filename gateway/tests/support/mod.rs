//! The in-process tier's harness: the gateway's router called with
//! `tower::ServiceExt::oneshot`, no socket and no dispatcher, over the database
//! `#[sqlx::test]` makes for each test. Behaviour that needs only the API and the
//! database is tested here; what crosses the broker is the end-to-end suite's.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hookrelay_core::config::Sensitive;
use hookrelay_core::queue::Publisher;
use hookrelay_core::validation::KeyName;
use hookrelay_core::{Config, Store};
use hookrelay_gateway::AppState;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt as _;

pub const ADMIN: &str = "admin-token-for-requests-tests";

/// The gateway's router, called in-process.
pub struct Api {
    pub router: Router,
    pub state: AppState,
}

impl Api {
    /// The gateway's router over `pool`; its publisher never connects unless a
    /// request gets as far as publishing, which none of these do.
    pub fn new(pool: PgPool) -> Self {
        let mut config = Config::local_defaults();
        config.security.admin_token = Some(Sensitive::new(ADMIN.into()));
        config.security.allow_private_targets = true;
        config.http.max_payload_bytes = 64 * 1024;
        config.broker.queue_prefix = format!("requests-{}", uuid::Uuid::new_v4().simple());
        let publisher = std::sync::Arc::new(Publisher::new(
            hookrelay_core::queue::Broker::from_settings(&config.broker),
            "requests-test",
            config.topology(),
        ));
        let state = AppState::new(config, Store::from_pool(pool), publisher);
        Self {
            router: hookrelay_gateway::app(state.clone()),
            state,
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).expect("request"))
            .await
            .expect("infallible");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{path}: body is not JSON: {e}"))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send("GET", path, Some(token), "application/json", Vec::new())
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send("DELETE", path, Some(token), "application/json", Vec::new())
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let body = serde_json::to_vec(&body).expect("json");
        self.send("PATCH", path, Some(token), "application/json", body)
            .await
    }

    /// A raw body with its own content type; `token` optional.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        self.send("POST", path, token, content_type, body).await
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// A producer key and a tenant (returns key, tenant id).
    pub async fn tenant(&self) -> (String, String) {
        let key = self.producer_key().await;
        let (status, body) = self
            .post("/v1/tenants", &key, json!({ "name": "Acme" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (key, body["id"].as_str().expect("id").to_string())
    }

    /// Creates an endpoint for every event at `url`; returns its id.
    pub async fn endpoint(&self, key: &str, tenant: &str, url: &str) -> String {
        let path = format!("/v1/tenants/{tenant}/endpoints");
        let (status, body) = self.post(&path, key, json!({ "url": url })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").into()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let body = serde_json::to_vec(&body).expect("json");
        self.send("POST", path, Some(token), "application/json", body)
            .await
    }

    pub async fn producer_key(&self) -> String {
        let name = KeyName::parse("requests").expect("name");
        self.state
            .actions
            .create_full_api_key(&name, &hookrelay_core::audit::Actor::admin())
            .await
            .expect("key")
            .1
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(self.state.store.pool())
            .await
            .expect("count")
    }
}
