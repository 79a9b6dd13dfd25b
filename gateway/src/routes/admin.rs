//! The operator's dead-letter API (admin token), the HTTP twin of `hookrelay dlq`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookrelay_core::actions::{self, ActionError, DeadScope};
use hookrelay_core::model::{Delivery, Job};
use hookrelay_core::store::{DeadFilter, DeadStat};
use serde::Deserialize;
use uuid::Uuid;

use super::bodies::{DeadList, DeadStats, ErrorBody, Inspection, Purged};
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

#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct Filter {
    tenant: Option<Uuid>,
    endpoint: Option<Uuid>,
    #[schema(max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    #[param(max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    event_type: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// Part of the recorded error.
    #[schema(max_length = 1024, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    #[param(max_length = 1024, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    reason: Option<String>,
    /// At most this many (list only; default 50).
    #[schema(minimum = 1, maximum = 1000)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Replay/purge with no other filter must say so.
    #[serde(default)]
    all: bool,
    /// Purge must be confirmed.
    #[serde(default)]
    confirm: bool,
}

impl Filter {
    /// Text PostgreSQL can compare: no control characters (a NUL would fail the
    /// query), lengths as the contract says.
    fn check(&self, invalid: fn(String) -> ApiError) -> ApiResult<()> {
        for (name, v, max) in [
            ("event_type", &self.event_type, 255),
            ("reason", &self.reason, 1024),
        ] {
            if let Some(v) = v
                && (v.chars().any(char::is_control) || v.chars().count() > max)
            {
                return Err(invalid(format!(
                    "{name} must be at most {max} characters, none of them control characters"
                )));
            }
        }
        if self.limit.is_some_and(|n| !(1..=1000).contains(&n)) {
            return Err(invalid("`limit` must be from 1 to 1000".into()));
        }
        Ok(())
    }

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

    fn scope(&self) -> ApiResult<DeadScope> {
        DeadScope::new(self.dead(), self.all).map_err(refusal)
    }
}

/// A bulk action's refusal in the API's words.
fn refusal(e: ActionError) -> ApiError {
    match e {
        ActionError::Unscoped => ApiError::invalid("give a filter, or \"all\": true"),
        ActionError::Unconfirmed => ApiError::invalid(
            "purging deletes deliveries and their attempts: send \"confirm\": true",
        ),
        e => e.into(),
    }
}

#[utoipa::path(
    get,
    path = "/v1/admin/dead",
    tag = "dead-letters",
    summary = "List dead deliveries",
    params(Filter),
    responses((status = 200, description = "Dead deliveries, newest first", body = DeadList)),
    security(("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    _a: Admin,
    Params(f): Params<Filter>,
) -> ApiResult<Json<DeadList>> {
    f.check(ApiError::bad_request)?;
    let rows: Vec<Delivery> = state
        .store
        .list_dead(&f.dead(), f.limit.unwrap_or(50))
        .await?;
    Ok(Json(DeadList { data: rows }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/dead/stats",
    tag = "dead-letters",
    summary = "Count dead deliveries per endpoint",
    params(Filter),
    responses((status = 200, description = "Per endpoint", body = DeadStats)),
    security(("admin_token" = [])),
)]
pub(super) async fn stats(
    State(state): State<AppState>,
    _a: Admin,
    Params(f): Params<Filter>,
) -> ApiResult<Json<DeadStats>> {
    f.check(ApiError::bad_request)?;
    let rows: Vec<DeadStat> = state.store.dead_stats(&f.dead()).await?;
    let total: i64 = rows.iter().map(|s| s.dead).sum();
    Ok(Json(DeadStats { data: rows, total }))
}

/// Starts a durable job that re-sends every matching dead delivery; `202` with the
/// job, whose progress is at `/v1/jobs/{id}`.
#[utoipa::path(
    post,
    path = "/v1/admin/dead/replay",
    tag = "dead-letters",
    summary = "Re-send the matching dead deliveries, as a job",
    request_body = Filter,
    responses(
        (status = 202, description = "The job", body = Job),
        (status = 404, description = "The tenant or endpoint it names does not exist", body = ErrorBody),
    ),
    security(("admin_token" = [])),
)]
pub(super) async fn replay(
    State(state): State<AppState>,
    Admin(by): Admin,
    Body(f): Body<Filter>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    f.check(ApiError::invalid)?;
    let job = actions::replay_dead_matching(&state.store, &f.scope()?, &by)
        .await
        .map_err(refusal)?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[utoipa::path(
    post,
    path = "/v1/admin/dead/purge",
    tag = "dead-letters",
    summary = "Delete the matching dead deliveries and their attempts",
    request_body = Filter,
    responses((status = 200, description = "How many", body = Purged)),
    security(("admin_token" = [])),
)]
pub(super) async fn purge(
    State(state): State<AppState>,
    Admin(by): Admin,
    Body(f): Body<Filter>,
) -> ApiResult<Json<Purged>> {
    f.check(ApiError::invalid)?;
    let purged = actions::purge_dead(&state.store, &f.scope()?, f.confirm, &by)
        .await
        .map_err(refusal)?;
    Ok(Json(Purged { purged }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/deliveries/{id}",
    tag = "dead-letters",
    summary = "Inspect any delivery, with its event and attempts",
    params(("id" = String, Path, description = "The delivery's id")),
    responses((status = 200, description = "The delivery", body = Inspection)),
    security(("admin_token" = [])),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    _a: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Inspection>> {
    let id = path_id(&id, "delivery")?;
    let (delivery, event, attempts) = state
        .store
        .inspect_delivery(id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(Json(Inspection { delivery, event, attempts }))
}
