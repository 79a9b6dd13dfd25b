//! The API as a test's client: requests with a token, answered as status and
//! JSON, and the few objects most tests start from (a key, a tenant, a subscriber).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ADMIN_TOKEN, Subscriber, TestApp};

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = req.send().await.expect("request reaches the gateway");
        let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .patch(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.put(self.url(path)).bearer_auth(token).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    /// A fresh producer key.
    pub async fn producer_key(&self) -> String {
        let (status, body) = self
            .post("/v1/api-keys", ADMIN_TOKEN, json!({ "name": "tests" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["key"].as_str().expect("key").to_string()
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

    /// A producer key, a tenant, and one endpoint for every event at `url`.
    pub async fn subscriber(&self, url: &str) -> Subscriber {
        let (key, tenant) = self.tenant().await;
        let (endpoint, _) = self.endpoint(&key, &tenant, url, None).await;
        Subscriber { key, tenant, endpoint }
    }

    /// Creates an endpoint; returns (id, secret).
    pub async fn endpoint(
        &self,
        key: &str,
        tenant: &str,
        url: &str,
        event_types: Option<&[&str]>,
    ) -> (String, String) {
        let mut body = json!({ "url": url });
        if let Some(types) = event_types {
            body["event_types"] = json!(types);
        }
        let (status, body) = self
            .post(&format!("/v1/tenants/{tenant}/endpoints"), key, body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().expect("id").into(),
            body["secret"].as_str().expect("secret").into(),
        )
    }

    /// Posts one event; returns its id.
    pub async fn event(&self, key: &str, tenant: &str, body: Value) -> String {
        let (status, res) = self
            .post(&format!("/v1/tenants/{tenant}/events"), key, body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{res}");
        res["id"].as_str().expect("id").into()
    }

    /// A key with these permissions (`None`: all) over these tenants (`None`: all).
    pub async fn scoped_key(
        &self,
        tenants: Option<&[&str]>,
        permissions: Option<Vec<&str>>,
    ) -> String {
        let mut body = json!({ "name": "scoped" });
        if let Some(t) = tenants {
            body["tenants"] = json!(t);
        }
        if let Some(p) = permissions {
            body["permissions"] = json!(p);
        }
        let (status, res) = self.post("/v1/api-keys", ADMIN_TOKEN, body).await;
        assert_eq!(status, StatusCode::CREATED, "{res}");
        res["key"].as_str().expect("key").to_string()
    }

    /// `method` on `path` with `token`, and `body` where the method takes one.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        match method {
            "GET" => self.get(path, token).await,
            "DELETE" => self.delete(path, token).await,
            "PATCH" => self.patch(path, token, body.clone()).await,
            "PUT" => self.put(path, token, body.clone()).await,
            _ => self.post(path, token, body.clone()).await,
        }
    }
}
