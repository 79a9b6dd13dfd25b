//! The in-process tier's harness: the gateway's router called with
//! `tower::ServiceExt::oneshot`, no socket and no dispatcher, over a database of
//! each test's own, cloned from the suite's migrated template. Behaviour that needs only the API and the
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
use std::str::FromStr;

use sqlx::Connection as _;
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower::ServiceExt as _;

pub const ADMIN: &str = "admin-token-for-requests-tests";

/// The gateway's router, called in-process, over a database of the test's own.
pub struct Api {
    pub router: Router,
    pub state: AppState,
    database: TestDatabase,
}

/// A migrated database of one test's, dropped with it (even after a panic).
struct TestDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // The test's runtime may be the one running this drop: use another.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            rt.expect("runtime").block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(drop))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        });
        let _ = dropped.join();
    }
}

impl Api {
    /// The gateway's router over a fresh database (cloned from the suite's migrated
    /// template); its publisher never connects unless a request gets as far as
    /// publishing, which none of these do.
    pub async fn fresh() -> Self {
        let admin_url = std::env::var("HOOKRELAY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://hookrelay:hookrelay@127.0.0.1:5432/postgres".into());
        let name = format!("hookrelay_api_test_{}", uuid::Uuid::new_v4().simple());
        hookrelay_core::store::test_databases::create_migrated(&admin_url, &name)
            .await
            .expect("a migrated test database");
        let options = PgConnectOptions::from_str(&admin_url)
            .expect("url")
            .database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options);
        let database = TestDatabase { admin_url, name };
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
            database,
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
