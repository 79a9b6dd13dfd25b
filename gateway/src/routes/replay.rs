//! Re-sending: one delivery now (`replay`), or an endpoint's failed and dead
//! deliveries in a time window as a durable job (`recover`, progress at `/v1/jobs/{id}`).
//! Either way the original `webhook-id` is reused, so subscribers can dedupe.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookrelay_core::model::{DeliveryStatus, Job};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Producer;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, path_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries/{id}/replay", post(replay))
        .route("/v1/tenants/{tenant}/endpoints/{id}/recover", post(recover))
        .route("/v1/jobs/{id}", get(job))
}

async fn replay(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "delivery")?;
    let delivery = state.actions.replay(tenant.id, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": delivery.id, "status": DeliveryStatus::Pending })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverIn {
    since: DateTime<Utc>,
    #[serde(default)]
    until: Option<DateTime<Utc>>,
}

async fn recover(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
    Body(req): Body<RecoverIn>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let endpoint = path_id(&id, "endpoint")?;
    let job = state
        .actions
        .recover(tenant.id, endpoint, req.since, req.until)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

async fn job(
    State(state): State<AppState>,
    _p: Producer,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    let id = path_id(&id, "job")?;
    state
        .store
        .get_job(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("job"))
}
