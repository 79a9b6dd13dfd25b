//! Producer API keys, managed by the operator: create (the key is shown once; only
//! its hash is stored), list (never the key, only its first characters), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookrelay_core::model::ApiKey;
use hookrelay_core::rules::KeyName;
use serde::Deserialize;
use serde_json::{Value, json};

#[allow(unused_imports)]
use super::schemas::*;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalBody, path_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/{id}", delete(revoke))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    /// Up to 256 characters, no control characters.
    #[serde(default)]
    #[schema(
        max_length = 256,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "billing service"
    )]
    name: Option<String>,
}

/// The body is optional: an empty one creates an unnamed key.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "Create a producer API key (shown once)",
    request_body(content = Option<CreateKey>, description = "Optional: an empty body makes an unnamed key"),
    responses((status = 201, description = "The key; only its hash is kept", body = CreatedKey)),
    security(("admin_token" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    OptionalBody(req): OptionalBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = KeyName::parse(&req.name.unwrap_or_default())?;
    let (row, key) = state.actions.create_api_key(&name).await?;
    let mut body = serde_json::to_value(&row).map_err(|e| ApiError::invalid(e.to_string()))?;
    body["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "List the producer API keys",
    responses((status = 200, description = "Every key, newest first (never the key itself)", body = ApiKeyList)),
    security(("admin_token" = [])),
)]
pub(super) async fn list(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<Value>> {
    let keys: Vec<ApiKey> = state.store.list_api_keys().await?;
    Ok(Json(json!({ "data": keys })))
}

/// Takes effect at once on this gateway and within a key refresh on the others.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    summary = "Revoke a key",
    params(("id" = String, Path, description = "The API key's id")),
    responses((status = 204, description = "Revoked; refused at once by this gateway")),
    security(("admin_token" = [])),
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "api key")?;
    if state.actions.revoke_api_key(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("api key"))
    }
}
