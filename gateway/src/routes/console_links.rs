//! `POST /v1/tenants/{tenant}/console-links`: a short-lived link that opens the
//! console for one tenant (a producer hands it to its customer).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

#[allow(unused_imports)]
use super::schemas::*;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/console-links", post(create))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/console-links",
    tag = "console",
    summary = "A single-use link that opens the console for this tenant",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    responses((status = 201, description = "The link (15 minutes)", body = ConsoleLink)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::ConsoleLinks)
        .await?;
    let (path, expires_at) = state.links.issue(
        tenant.id,
        (caller.actor.kind == hookrelay_core::audit::ActorKind::ApiKey)
            .then_some(caller.actor.id)
            .flatten(),
    );
    state
        .store
        .record_audit(
            &caller.actor,
            hookrelay_core::audit::action::CONSOLE_LINK_ISSUED,
            Some(tenant.id),
            None,
            json!({ "expires_at": expires_at }),
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
        Json(json!({ "url": format!("{base}{path}"), "expires_at": expires_at })),
    ))
}
