//! Producer API keys, created by the operator. The key is shown once; only its hash is stored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_core::crypto::hash_api_key;
use hookrelay_core::ids::new_id;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, generate_key};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/api-keys", post(create))
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
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: CreateKey = if body.iter().all(u8::is_ascii_whitespace) {
        CreateKey::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::invalid(e.to_string()),
            _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()),
        })?
    };
    let name = req.name.unwrap_or_default();
    if name.chars().count() > 256 {
        return Err(ApiError::invalid("name must be at most 256 characters"));
    }
    let id = new_id();
    let key = generate_key();
    let hash = hash_api_key(&key);
    state.store.insert_api_key(id, &name, &hash).await?;
    state.keys.insert(hash);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": name, "key": key })),
    ))
}
