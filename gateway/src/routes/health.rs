//! Liveness (`/healthz`), readiness (`/readyz`: Postgres and RabbitMQ reachable;
//! the causes go to the log, not to the unauthenticated caller) and the
//! Prometheus metrics (`/metrics`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::bodies::{Checks, ErrorDetail, NotReady, Readiness, Status};
use crate::error::ErrorCode;
use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process's metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    summary = "Prometheus metrics",
    responses((status = 200, description = "The Prometheus text format", content_type = "text/plain", body = String)),
)]
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    hookrelay_core::metrics::sample_pool(&state.store);
    (
        [(header::CONTENT_TYPE, hookrelay_core::metrics::CONTENT_TYPE)],
        hookrelay_core::metrics::render(),
    )
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "The process is alive",
    responses((status = 200, description = "Alive", body = Status)),
)]
pub(super) async fn healthz() -> Json<Status> {
    Json(Status { status: "ok".into() })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Postgres and RabbitMQ are reachable",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Not ready: `checks` names the part that is down", body = NotReady)),
)]
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let postgres = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: postgres unreachable");
            Err("unreachable")
        }
        Err(_) => Err("timed out"),
    };
    let rabbitmq = match tokio::time::timeout(CHECK_TIMEOUT, state.publisher.channel()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: rabbitmq unreachable");
            Err("unreachable")
        }
        Err(_) => Err("timed out"),
    };
    let show = |r: &Result<(), &str>| r.err().unwrap_or("ok").to_string();
    let checks = Checks {
        postgres: show(&postgres),
        rabbitmq: show(&rabbitmq),
    };
    let failing: Vec<&str> = [("postgres", &postgres), ("rabbitmq", &rabbitmq)]
        .into_iter()
        .filter(|(_, r)| r.is_err())
        .map(|(name, _)| name)
        .collect();
    if failing.is_empty() {
        let ready = Readiness { status: "ready".into(), checks };
        (StatusCode::OK, Json(ready)).into_response()
    } else {
        let message = format!("not ready: {} unreachable", failing.join(" and "));
        let body = NotReady {
            error: ErrorDetail { code: ErrorCode::NotReady, message },
            checks,
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
