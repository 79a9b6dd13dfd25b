//! Liveness (`/healthz`) and readiness (`/readyz`: Postgres and RabbitMQ reachable).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let postgres = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let rabbitmq = match tokio::time::timeout(CHECK_TIMEOUT, state.publisher.channel()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(format!("unreachable: {e}")),
    };
    let checks = json!({ "postgres": show(&postgres), "rabbitmq": show(&rabbitmq) });
    let failing: Vec<&str> = [("postgres", &postgres), ("rabbitmq", &rabbitmq)]
        .into_iter()
        .filter(|(_, r)| r.is_err())
        .map(|(name, _)| name)
        .collect();
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        )
    } else {
        let message = format!("not ready: {} unreachable", failing.join(" and "));
        let body =
            json!({ "error": { "code": "not_ready", "message": message }, "checks": checks });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
