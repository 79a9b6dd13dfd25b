//! The operator's dead-letter API (admin token), the HTTP twin of `hookrelay dlq`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookrelay_core::ids::new_id;
use hookrelay_core::model::{Delivery, Job};
use hookrelay_core::store::{DeadFilter, DeadStat};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params, path_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/dead", get(list))
        .route("/v1/admin/dead/stats", get(stats))
        .route("/v1/admin/dead/replay", post(replay))
        .route("/v1/admin/dead/purge", post(purge))
        .route("/v1/admin/deliveries/{id}", get(show))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    tenant: Option<Uuid>,
    endpoint: Option<Uuid>,
    event_type: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    reason: Option<String>,
    limit: Option<i64>,
    /// Replay/purge with no other filter must say so.
    #[serde(default)]
    all: bool,
    /// Purge must be confirmed.
    #[serde(default)]
    confirm: bool,
}

impl Filter {
    fn dead(&self) -> DeadFilter {
        DeadFilter {
            tenant_id: self.tenant,
            endpoint_id: self.endpoint,
            event_type: self.event_type.clone(),
            since: self.since,
            until: self.until,
            reason: self.reason.clone(),
        }
    }

    fn require_scope(&self) -> ApiResult<()> {
        let none = self.tenant.is_none()
            && self.endpoint.is_none()
            && self.event_type.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.reason.is_none();
        if none && !self.all {
            Err(ApiError::invalid("give a filter, or \"all\": true"))
        } else {
            Ok(())
        }
    }
}

async fn list(
    State(state): State<AppState>,
    _a: Admin,
    Params(f): Params<Filter>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<Delivery> = state
        .store
        .list_dead(&f.dead(), f.limit.unwrap_or(50).clamp(1, 1000))
        .await?;
    Ok(Json(json!({ "data": rows })))
}

async fn stats(
    State(state): State<AppState>,
    _a: Admin,
    Params(f): Params<Filter>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<DeadStat> = state.store.dead_stats(&f.dead()).await?;
    let total: i64 = rows.iter().map(|s| s.dead).sum();
    Ok(Json(json!({ "data": rows, "total": total })))
}

/// Starts a durable job that re-sends every matching dead delivery; `202` with the
/// job, whose progress is at `/v1/jobs/{id}`.
async fn replay(
    State(state): State<AppState>,
    _a: Admin,
    Body(f): Body<Filter>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    f.require_scope()?;
    let job = state
        .store
        .create_dead_replay_job(new_id(), &f.dead())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

async fn purge(
    State(state): State<AppState>,
    _a: Admin,
    Body(f): Body<Filter>,
) -> ApiResult<Json<Value>> {
    f.require_scope()?;
    if !f.confirm {
        return Err(ApiError::invalid(
            "purging deletes deliveries and their attempts: send \"confirm\": true",
        ));
    }
    let n = state.store.purge_dead(&f.dead()).await?;
    Ok(Json(json!({ "purged": n })))
}

async fn show(
    State(state): State<AppState>,
    _a: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = path_id(&id, "delivery")?;
    let (delivery, event, attempts) = state
        .store
        .inspect_delivery(id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(Json(
        json!({ "delivery": delivery, "event": event, "attempts": attempts }),
    ))
}
