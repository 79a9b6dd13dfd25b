//! JSON snapshots for the console's live islands: a job's progress and a
//! delivery's attempts, scoped like the pages that show them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookrelay_console_islands::Snapshot;
use uuid::Uuid;

use crate::components::live::{delivery_snapshot, job_snapshot};
use crate::session::{AdminSession, TenantSession};
use crate::state::ConsoleState;

fn answer(found: Result<Option<Snapshot>, hookrelay_core::store::StoreError>) -> Response {
    match found {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "console progress: database unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub async fn tenant_job(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<Uuid>,
) -> Response {
    let job = state.store.get_job(id).await;
    answer(job.map(|j| {
        j.filter(|j| j.tenant_id == Some(s.tenant))
            .as_ref()
            .map(job_snapshot)
    }))
}

pub async fn admin_job(
    State(state): State<ConsoleState>,
    _s: AdminSession,
    Path(id): Path<Uuid>,
) -> Response {
    let job = state.store.get_job(id).await;
    answer(job.map(|j| j.as_ref().map(job_snapshot)))
}

pub async fn delivery(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<Uuid>,
) -> Response {
    let d = state.store.get_delivery(s.tenant, id).await;
    answer(d.map(|d| d.as_ref().map(delivery_snapshot)))
}
