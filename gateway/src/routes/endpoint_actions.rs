//! Endpoint actions: rotate the signing secret (the old one keeps signing through a
//! grace period, so subscribers switch without missing a message) and send a test event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::rules::{self, Grace};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Producer;
use crate::error::ApiResult;
use crate::extract::{OptionalBody, path_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{tenant}/endpoints/{id}/secret/rotate",
            post(rotate),
        )
        .route("/v1/tenants/{tenant}/endpoints/{id}/test", post(test))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateIn {
    /// Bring your own `whsec_` secret; generated otherwise.
    #[serde(default)]
    secret: Option<String>,
    /// How long the old secret keeps signing (default a day; 0 ends it now).
    #[serde(default)]
    grace_period_seconds: Option<u64>,
}

async fn rotate(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
    OptionalBody(req): OptionalBody<RotateIn>,
) -> ApiResult<Json<Value>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "endpoint")?;
    let grace = Grace::from_secs(req.grace_period_seconds)?;
    let secret = rules::secret_or_new(req.secret.as_deref())?;
    let rotated = state
        .actions
        .rotate_secret(tenant.id, id, secret, grace)
        .await?;
    Ok(Json(json!({
        "secret": rotated.secret.to_whsec(),
        "previous_secret_expires_at": rotated.previous_secret_expires_at,
    })))
}

/// Sends a `hookrelay.test` event to this endpoint only, whatever it subscribes to
/// (like any delivery, it waits while the endpoint's circuit is open).
async fn test(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "endpoint")?;
    let delivery = state.actions.send_test(tenant.id, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivery_id": delivery.id, "status": DeliveryStatus::Pending })),
    ))
}
