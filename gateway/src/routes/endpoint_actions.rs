//! Endpoint actions: rotate the signing secret (the old one keeps signing through a
//! grace period, so subscribers switch without missing a message) and send a test event.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use hookrelay_core::rules;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Producer;
use crate::error::{ApiError, ApiResult};
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
    let grace = req
        .grace_period_seconds
        .map_or(rules::DEFAULT_SECRET_GRACE, Duration::from_secs);
    rules::check_grace(grace).map_err(ApiError::invalid)?;
    let secret = rules::new_secret(req.secret.as_deref()).map_err(ApiError::invalid)?;
    let endpoint = state
        .store
        .rotate_endpoint_secret(
            tenant.id,
            id,
            &state.cipher.encrypt(secret.as_bytes()),
            grace,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    Ok(Json(json!({
        "secret": secret.to_whsec(),
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
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
    let endpoint = state
        .store
        .get_endpoint(tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    if endpoint.disabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "endpoint_disabled",
            "this endpoint is disabled: enable it to send it a test event",
        ));
    }
    let delivery = state
        .store
        .insert_test_delivery(
            tenant.id,
            id,
            rules::TEST_EVENT_TYPE,
            &rules::test_payload(id, Utc::now()),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    state.publisher.send_now(&[delivery]).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivery_id": delivery.id, "status": "pending" })),
    ))
}
