//! Endpoint actions: rotate the signing secret (the old one keeps signing through a
//! grace period, so subscribers switch without missing a message) and send a test event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::validation::{self, Grace};
use serde::Deserialize;

use super::bodies::{ErrorBody, Rotated, TestSent};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{OptionalBody, path_id};
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{tenant}/endpoints/{id}/secret/rotate",
            post(rotate),
        )
        .route("/v1/tenants/{tenant}/endpoints/{id}/test", post(test))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateIn {
    /// Bring your own `whsec_` secret (24 to 64 bytes); generated otherwise.
    #[serde(default)]
    #[schema(
        pattern = "^whsec_((?:[A-Za-z0-9+/]{4}){8}|(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)|(?:[A-Za-z0-9+/]{4}){21}[A-Za-z0-9+/][AQgw]==)$"
    )]
    secret: Option<String>,
    /// How long the old secret keeps signing (default a day; 0 ends it now).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    grace_period_seconds: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{id}/secret/rotate",
    tag = "endpoints",
    summary = "Rotate an endpoint's signing secret",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    request_body(content = Option<RotateIn>, description = "Optional"),
    responses((status = 200, description = "The new secret; the old one signs too until previous_secret_expires_at", body = Rotated)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    OptionalBody(req): OptionalBody<RotateIn>,
) -> ApiResult<Json<Rotated>> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::EndpointsWrite)
        .await?;
    let id = path_id(&id, "endpoint")?;
    let grace = Grace::from_secs(req.grace_period_seconds)?;
    let secret = validation::secret_or_new(req.secret.as_deref())?;
    let rotated = state
        .actions
        .rotate_secret(tenant.id, id, secret, grace, &caller.actor)
        .await?;
    Ok(Json(Rotated {
        secret: rotated.secret.to_whsec(),
        previous_secret_expires_at: rotated.previous_secret_expires_at,
    }))
}

/// Sends a `hookrelay.test` event to this endpoint only, whatever it subscribes to
/// (like any delivery, it waits while the endpoint's circuit is open).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{id}/test",
    tag = "endpoints",
    summary = "Send a test event to this endpoint only",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    responses((status = 202, description = "Queued", body = TestSent), (status = 409, description = "The endpoint is disabled", body = ErrorBody)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<TestSent>)> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::EndpointsWrite)
        .await?;
    let id = path_id(&id, "endpoint")?;
    let delivery = state.actions.send_test(tenant.id, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestSent {
            delivery_id: delivery.id,
            status: DeliveryStatus::Pending.as_str().into(),
        }),
    ))
}
