//! The broker's dead-letter queue for operators (admin token): messages no
//! consumer could handle, with their reason; requeue (checked again first) and
//! purge. The HTTP twin of `hookrelay dlq broker`.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_core::queue::{DeadLetter, DeadLetters, Pick, RequeueReport};
use serde::Deserialize;
use serde_json::{Value, json};

use super::bodies::{BrokerDeadLetter, BrokerDeadList, BrokerPurged};
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::state::AppState;

/// Records a broker dead-letter action. The broker has no transaction to share
/// with the database, so the action stands even if the entry cannot be written
/// (that is logged as an error).
async fn record(state: &AppState, by: &hookrelay_core::audit::Actor, action: &str, details: Value) {
    if let Err(e) = state
        .store
        .record_audit(by, action, None, None, details)
        .await
    {
        tracing::error!(error = %e, action, "cannot write the audit entry of a broker dead-letter action");
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/broker-dead", get(list))
        .route("/v1/admin/broker-dead/requeue", post(requeue))
        .route("/v1/admin/broker-dead/purge", post(purge))
        .route("/v1/admin/broker-dead/{id}", get(show))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Selection {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
    /// Purge must be confirmed.
    #[serde(default)]
    confirm: bool,
}

impl Selection {
    fn pick(self) -> ApiResult<Pick> {
        match (self.all, self.ids.is_empty()) {
            (true, true) => Ok(Pick::All),
            (false, false) if self.ids.len() <= 1000 => Ok(Pick::Ids(self.ids)),
            (false, false) => Err(ApiError::invalid("at most 1000 ids at once")),
            (true, false) => Err(ApiError::invalid("give \"ids\" or \"all\": true, not both")),
            (false, true) => Err(ApiError::invalid("give \"ids\", or \"all\": true")),
        }
    }
}

async fn open(state: &AppState) -> ApiResult<DeadLetters> {
    Ok(DeadLetters::shared(state.publisher.clone()))
}

fn broker_down(e: &lapin::Error) -> ApiError {
    tracing::warn!(error = %e, "broker dead letters: broker unavailable");
    ApiError::unavailable("the message broker is unavailable")
}

fn view(letter: DeadLetter) -> BrokerDeadLetter {
    BrokerDeadLetter { body: letter.body_text(), letter }
}

#[utoipa::path(
    get,
    path = "/v1/admin/broker-dead",
    tag = "broker-dead-letters",
    summary = "List the broker's dead-letter queue",
    params(ListQuery),
    responses((status = 200, description = "The messages, oldest first", body = BrokerDeadList)),
    security(("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    _a: Admin,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<BrokerDeadList>> {
    let dead = open(&state).await?;
    let count = dead.count().await.map_err(|e| broker_down(&e))?;
    let letters = dead
        .list(crate::extract::bounded_limit(q.limit, 50, 1000)? as usize)
        .await
        .map_err(|e| broker_down(&e))?;
    let data = letters.into_iter().map(view).collect();
    Ok(Json(BrokerDeadList { count, data }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/broker-dead/{id}",
    tag = "broker-dead-letters",
    summary = "Show one dead-lettered message",
    params(("id" = String, Path, description = "The message's id")),
    responses((status = 200, description = "The message", body = BrokerDeadLetter)),
    security(("admin_token" = [])),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    _a: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<BrokerDeadLetter>> {
    let dead = open(&state).await?;
    let letter = dead
        .find(&id)
        .await
        .map_err(|e| broker_down(&e))?
        .ok_or_else(|| ApiError::not_found("dead letter"))?;
    Ok(Json(view(letter)))
}

#[utoipa::path(
    post,
    path = "/v1/admin/broker-dead/requeue",
    tag = "broker-dead-letters",
    summary = "Requeue dead-lettered messages (checked again first)",
    request_body = Selection,
    responses((status = 200, description = "What was requeued, and what stayed and why", body = RequeueReport)),
    security(("admin_token" = [])),
)]
pub(super) async fn requeue(
    State(state): State<AppState>,
    Admin(by): Admin,
    Body(s): Body<Selection>,
) -> ApiResult<Json<RequeueReport>> {
    let pick = s.pick()?;
    let dead = open(&state).await?;
    let report = dead
        .requeue(&pick, &state.store, &state.publisher)
        .await
        .map_err(|e| broker_down(&e))?;
    let details = json!({ "requeued": report.requeued, "refused": report.refused.len() });
    record(
        &state,
        &by,
        hookrelay_core::audit::action::BROKER_DEAD_REQUEUED,
        details,
    )
    .await;
    Ok(Json(report))
}

#[utoipa::path(
    post,
    path = "/v1/admin/broker-dead/purge",
    tag = "broker-dead-letters",
    summary = "Delete dead-lettered messages for good",
    request_body = Selection,
    responses((status = 200, description = "The ids deleted", body = BrokerPurged)),
    security(("admin_token" = [])),
)]
pub(super) async fn purge(
    State(state): State<AppState>,
    Admin(by): Admin,
    Body(s): Body<Selection>,
) -> ApiResult<Json<BrokerPurged>> {
    if !s.confirm {
        return Err(ApiError::invalid(
            "purging deletes the messages for good: send \"confirm\": true",
        ));
    }
    let pick = s.pick()?;
    let dead = open(&state).await?;
    let purged = dead.purge(&pick).await.map_err(|e| broker_down(&e))?;
    record(
        &state,
        &by,
        hookrelay_core::audit::action::BROKER_DEAD_PURGED,
        json!({ "purged": purged }),
    )
    .await;
    Ok(Json(BrokerPurged { purged }))
}
