//! `POST /v1/tenants/{tenant}/console-links`: a short-lived link that opens the
//! console for one tenant (a producer hands it to its customer). The session it
//! opens holds the issuer's permissions, or fewer when the body names them; it may
//! always read the tenant (whoever can issue a link can read through it).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_core::access::Permissions;
use hookrelay_core::audit::ActorKind;
use hookrelay_core::console_link::Issuer;
use serde::Deserialize;
use serde_json::json;

use super::api_keys::KeyPermission;
use super::bodies::ConsoleLink;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::OptionalBody;
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/console-links", post(create))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkIn {
    /// What the console session may do, each held by the caller; absent: all the
    /// caller holds. Reading is always allowed; `endpoints:write` (add, edit,
    /// enable, disable, rotate, test) and `replay` (replay, recover) open actions.
    #[serde(default)]
    #[schema(example = json!(["read"]))]
    permissions: Option<Vec<KeyPermission>>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/console-links",
    tag = "console",
    summary = "A single-use link that opens the console for this tenant",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    request_body(content = Option<LinkIn>, description = "Optional"),
    responses((status = 201, description = "The link (15 minutes)", body = ConsoleLink)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    OptionalBody(req): OptionalBody<LinkIn>,
) -> ApiResult<(StatusCode, Json<ConsoleLink>)> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::ConsoleLinks)
        .await?;
    let held = caller.permissions();
    let permissions = match req.permissions {
        None => held,
        Some(list) => {
            let mut set = Permissions::default();
            for p in list {
                let p = p.into();
                if !held.contains(p) {
                    return Err(ApiError::forbidden(format!(
                        "a console link cannot grant `{}`: the caller lacks it",
                        p.as_str()
                    )));
                }
                set.insert(p);
            }
            set
        }
    };
    let issuer = match (caller.actor.kind, caller.actor.id) {
        (ActorKind::ApiKey, Some(id)) => Issuer::ApiKey(id),
        (ActorKind::Operator, Some(id)) => Issuer::Operator(id),
        _ => Issuer::AdminToken,
    };
    let (path, expires_at) = state.links.issue(tenant.id, issuer, permissions);
    state
        .store
        .record_audit(
            &caller.actor,
            hookrelay_core::audit::action::CONSOLE_LINK_ISSUED,
            Some(tenant.id),
            None,
            json!({ "expires_at": expires_at, "permissions": permissions.names() }),
        )
        .await?;
    let base = match &state.config.http.public_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
                })
                .map_or_else(|| state.config.http.listen.to_string(), str::to_string);
            format!("http://{host}")
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(ConsoleLink { url: format!("{base}{path}"), expires_at }),
    ))
}
