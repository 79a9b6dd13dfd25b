//! Producer API keys, managed by the operator: create (the key is shown once; only
//! its hash is stored) with the tenants it reaches, its permissions and an
//! optional expiry; list (never the key, only its first characters); revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookrelay_core::access::{Permission, Permissions};
use hookrelay_core::model::ApiKey;
use hookrelay_core::store::NewKey;
use hookrelay_core::validation::KeyName;
use serde::Deserialize;
use uuid::Uuid;

use super::bodies::{ApiKeyList, CreatedKey, ErrorBody};
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
    /// The tenants (ids or uids) the key reaches; absent or `null`: every tenant.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 1000, example = json!(["acme"]))]
    tenants: Option<Vec<String>>,
    /// What the key may do: any of `events:write`, `read`, `endpoints:write`,
    /// `secrets:read`, `console-links`, `replay`, `tenants:write`; absent: all.
    #[serde(default)]
    #[schema(min_items = 1, example = json!(["events:write"]))]
    permissions: Option<Vec<KeyPermission>>,
    /// When the key stops working (a time already past makes a key that never
    /// works); absent: never.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// One permission a key may hold.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub(super) enum KeyPermission {
    #[serde(rename = "events:write")]
    EventsWrite,
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "endpoints:write")]
    EndpointsWrite,
    #[serde(rename = "secrets:read")]
    SecretsRead,
    #[serde(rename = "console-links")]
    ConsoleLinks,
    #[serde(rename = "replay")]
    Replay,
    #[serde(rename = "tenants:write")]
    TenantsWrite,
}

impl From<KeyPermission> for Permission {
    fn from(p: KeyPermission) -> Self {
        match p {
            KeyPermission::EventsWrite => Self::EventsWrite,
            KeyPermission::Read => Self::Read,
            KeyPermission::EndpointsWrite => Self::EndpointsWrite,
            KeyPermission::SecretsRead => Self::SecretsRead,
            KeyPermission::ConsoleLinks => Self::ConsoleLinks,
            KeyPermission::Replay => Self::Replay,
            KeyPermission::TenantsWrite => Self::TenantsWrite,
        }
    }
}

/// The tenants a new key reaches, each checked to exist.
async fn scope(state: &AppState, given: Option<Vec<String>>) -> ApiResult<Option<Vec<Uuid>>> {
    let Some(given) = given else {
        return Ok(None);
    };
    if given.is_empty() || given.len() > 1000 {
        return Err(ApiError::invalid(
            "tenants must list 1 to 1000 tenants (or be left out for every tenant)",
        ));
    }
    let mut ids = Vec::with_capacity(given.len());
    for t in &given {
        let tenant = state.tenants.resolve(&state.store, t).await.map_err(|e| {
            if e.code == crate::error::ErrorCode::NotFound {
                ApiError::not_found(&format!("tenant {t:?} (in tenants)"))
            } else {
                e
            }
        })?;
        if !ids.contains(&tenant.id) {
            ids.push(tenant.id);
        }
    }
    Ok(Some(ids))
}

/// The body is optional: an empty one creates an unnamed key.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "Create a producer API key (shown once), with its scope, permissions and expiry",
    request_body(content = Option<CreateKey>, description = "Optional: an empty body makes an unnamed key"),
    responses(
        (status = 201, description = "The key; only its hash is kept", body = CreatedKey),
        (status = 404, description = "A tenant it names does not exist", body = ErrorBody),
    ),
    security(("admin_token" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    Admin(by): Admin,
    OptionalBody(req): OptionalBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let name = KeyName::parse(&req.name.unwrap_or_default())?;
    let permissions = match req.permissions {
        None => Permissions::all(),
        Some(list) if list.is_empty() => {
            return Err(ApiError::invalid(
                "permissions must name at least one permission (or be left out for all)",
            ));
        }
        Some(list) => {
            let mut set = Permissions::default();
            for p in list {
                set.insert(p.into());
            }
            set
        }
    };
    let tenants = scope(&state, req.tenants).await?;
    let new = NewKey {
        name: &name,
        tenants: tenants.as_deref(),
        permissions,
        expires_at: req.expires_at,
    };
    let (row, key) = state.actions.create_api_key(&new, &by).await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { row, key })))
}

#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "List the producer API keys",
    responses((status = 200, description = "Every key, newest first (never the key itself)", body = ApiKeyList)),
    security(("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> ApiResult<Json<ApiKeyList>> {
    let data: Vec<ApiKey> = state.store.list_api_keys().await?;
    Ok(Json(ApiKeyList { data }))
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
    Admin(by): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "api key")?;
    if state.actions.revoke_api_key(id, &by).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("api key"))
    }
}
