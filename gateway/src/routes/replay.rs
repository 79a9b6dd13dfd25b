//! Re-sending: one delivery now (`replay`), or an endpoint's failed and dead
//! deliveries in a time window as a durable job (`recover`, progress at `/v1/jobs/{id}`).
//! Either way the original `webhook-id` is reused, so subscribers can dedupe.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookrelay_core::model::{DeliveryStatus, Job, JobKind};
use serde::Deserialize;

use super::bodies::Replayed;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, path_id};
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries/{id}/replay", post(replay))
        .route("/v1/tenants/{tenant}/endpoints/{id}/recover", post(recover))
        .route("/v1/jobs/{id}", get(job))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/deliveries/{id}/replay",
    tag = "deliveries",
    summary = "Send a delivery again (same webhook-id)",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The delivery's id")),
    responses((status = 202, description = "Queued", body = Replayed)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    let tenant = caller.tenant(&state, &tenant, Permission::Replay).await?;
    let id = path_id(&id, "delivery")?;
    let delivery = state.actions.replay(tenant.id, id, &caller.actor).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            id: delivery.id,
            status: DeliveryStatus::Pending.as_str().into(),
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RecoverIn {
    since: DateTime<Utc>,
    #[serde(default)]
    until: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{id}/recover",
    tag = "endpoints",
    summary = "Re-send an endpoint's undelivered deliveries since a time, as a job",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    request_body = RecoverIn,
    responses((status = 202, description = "The job", body = Job)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Body(req): Body<RecoverIn>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let tenant = caller.tenant(&state, &tenant, Permission::Replay).await?;
    let endpoint = path_id(&id, "endpoint")?;
    let job = state
        .actions
        .recover(tenant.id, endpoint, req.since, req.until, &caller.actor)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    summary = "Show a job and its progress",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = Job)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    let id = path_id(&id, "job")?;
    let job = state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    // A tenant's job to keys that reach its tenant; an operator's job (a
    // dead-letter replay) to operators only.
    let visible = caller.is_operator()
        || (job.kind != JobKind::DeadReplay && job.tenant_id.is_some_and(|t| caller.reaches(t)));
    if !visible {
        return Err(ApiError::not_found("job"));
    }
    caller.require(Permission::Read)?;
    Ok(Json(job))
}
