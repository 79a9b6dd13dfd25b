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

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalBody, path_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/{id}", delete(revoke))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    #[serde(default)]
    name: Option<String>,
}

/// The body is optional: an empty one creates an unnamed key.
async fn create(
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

async fn list(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<Value>> {
    let keys: Vec<ApiKey> = state.store.list_api_keys().await?;
    Ok(Json(json!({ "data": keys })))
}

/// Takes effect at once on this gateway and within a key refresh on the others.
async fn revoke(
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
