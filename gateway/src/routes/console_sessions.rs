//! The operator's view of console sessions: every open one (customers' sessions
//! opened by links, and operators' own), and ending one at once, whoever issued
//! its link — the admin token and operators included.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookrelay_core::store::ConsoleSession;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, path_id};
use crate::state::AppState;

/// At most this many open sessions are listed, newest first.
const MAX_LISTED: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/console-sessions", get(list))
        .route("/v1/admin/console-sessions/{id}", delete(end))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionQuery {
    /// Only this tenant's sessions.
    tenant: Option<Uuid>,
}

/// Open console sessions, newest first (at most 500).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsoleSessionList {
    pub data: Vec<ConsoleSession>,
}

#[utoipa::path(
    get,
    path = "/v1/admin/console-sessions",
    tag = "console",
    summary = "List open console sessions",
    params(SessionQuery),
    responses((status = 200, description = "Open sessions, newest first", body = ConsoleSessionList)),
    security(("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Params(q): Params<SessionQuery>,
) -> ApiResult<Json<ConsoleSessionList>> {
    let data = state
        .store
        .list_console_sessions(q.tenant, MAX_LISTED)
        .await?;
    Ok(Json(ConsoleSessionList { data }))
}

#[utoipa::path(
    delete,
    path = "/v1/admin/console-sessions/{id}",
    tag = "console",
    summary = "End a console session at once",
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 204, description = "Ended: its next request is refused")),
    security(("admin_token" = [])),
)]
pub(super) async fn end(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "console session")?;
    if state.store.end_console_session(id, &by).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("console session"))
    }
}
