//! Delivery controls beside the endpoint's own fields (pausing is `PATCH
//! {"paused": true}`): what waits (the backlog, an ordered endpoint's head),
//! cancelling one delivery, one event's deliveries or an endpoint's backlog (a
//! durable job), and trying a filter on a stored event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_core::filter::{self, Verdict};
use hookrelay_core::model::{Delivery, Job};
use hookrelay_core::store::EndpointBacklog;
use serde::Deserialize;
use uuid::Uuid;

use super::bodies::{ErrorBody, EventCancelled};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, path_id};
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/endpoints/{id}/backlog", get(backlog))
        .route(
            "/v1/tenants/{tenant}/endpoints/{id}/backlog/cancel",
            post(cancel_backlog),
        )
        .route(
            "/v1/tenants/{tenant}/endpoints/{id}/filter/test",
            post(test_filter),
        )
        .route(
            "/v1/tenants/{tenant}/deliveries/{id}/cancel",
            post(cancel_delivery),
        )
        .route(
            "/v1/tenants/{tenant}/events/{id}/cancel",
            post(cancel_event),
        )
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{id}/backlog",
    tag = "endpoints",
    summary = "What waits: held deliveries (paused, or behind an ordered endpoint's head) and the head",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The backlog", body = EndpointBacklog)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn backlog(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointBacklog>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let id = path_id(&id, "endpoint")?;
    state
        .store
        .endpoint_backlog(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{id}/backlog/cancel",
    tag = "endpoints",
    summary = "Cancel every undelivered delivery of an endpoint, as a job",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    responses((status = 202, description = "The job (progress at /v1/jobs/{id}); cancelled deliveries can be recovered", body = Job)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn cancel_backlog(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let tenant = caller.tenant(&state, &tenant, Permission::Replay).await?;
    let id = path_id(&id, "endpoint")?;
    let job = state
        .actions
        .cancel_backlog(tenant.id, id, &caller.actor)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FilterTestIn {
    /// A stored event of the tenant.
    event_id: Uuid,
    /// A filter to try instead of the endpoint's own (not saved).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    filter: Option<serde_json::Value>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{id}/filter/test",
    tag = "endpoints",
    summary = "Would this endpoint receive a stored event? (its types, channels and filter, or a filter to try)",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    request_body = FilterTestIn,
    responses(
        (status = 200, description = "The verdict, part by part", body = Verdict),
        (status = 422, description = "The filter tried is invalid", body = ErrorBody),
    ),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn test_filter(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Body(req): Body<FilterTestIn>,
) -> ApiResult<Json<Verdict>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let id = path_id(&id, "endpoint")?;
    let endpoint = state
        .store
        .get_endpoint(tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    let event = state
        .store
        .get_event(tenant.id, req.event_id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let verdict = filter::judge(&endpoint, &event, req.filter.as_ref())
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Json(verdict))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/deliveries/{id}/cancel",
    tag = "deliveries",
    summary = "Cancel a delivery not delivered yet (it can be replayed or recovered later)",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "Cancelled", body = Delivery),
        (status = 409, description = "Delivered, dead or cancelled already (`not_cancellable`)", body = ErrorBody),
    ),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn cancel_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Delivery>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Replay).await?;
    let id = path_id(&id, "delivery")?;
    state
        .actions
        .cancel_delivery(tenant.id, id, &caller.actor)
        .await?;
    state
        .store
        .get_delivery(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("delivery"))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/events/{id}/cancel",
    tag = "events",
    summary = "Cancel every delivery of an event not delivered yet",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The event's id")),
    responses((status = 200, description = "How many were cancelled", body = EventCancelled)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn cancel_event(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<EventCancelled>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Replay).await?;
    let id = path_id(&id, "event")?;
    let cancelled = state
        .actions
        .cancel_event(tenant.id, id, &caller.actor)
        .await?;
    Ok(Json(EventCancelled { cancelled }))
}
