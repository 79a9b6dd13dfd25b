//! Re-sending: one delivery now (`replay`), or an endpoint's failed and dead
//! deliveries in a time window as a durable job (`recover`, progress at `/v1/jobs/{id}`).
//! Either way the original `webhook-id` is reused, so subscribers can dedupe.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookrelay_core::ids::new_id;
use hookrelay_core::model::Job;
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
    let Some(delivery) = state.store.replay_delivery(tenant.id, id).await? else {
        return Err(ApiError::not_found("delivery"));
    };
    // Due in a minute anyway; sent at once if the publish goes through.
    state.publisher.send_now(&[delivery]).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": delivery.id, "status": "pending" })),
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
    if state
        .store
        .get_endpoint(tenant.id, endpoint)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("endpoint"));
    }
    if req.until.is_some_and(|u| u <= req.since) {
        return Err(ApiError::invalid("until must be after since"));
    }
    let job = state
        .store
        .create_recover_job(new_id(), tenant.id, endpoint, req.since, req.until)
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
