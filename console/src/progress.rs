//! JSON snapshots for the console's live islands: a job's progress and a
//! delivery's attempts, scoped like the pages that show them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookrelay_console_islands::Snapshot;
use hookrelay_core::model::{Delivery, Job};
use uuid::Uuid;

use crate::ConsoleState;
use crate::session::{AdminSession, TenantSession};
use crate::view::ago;

pub fn job_snapshot(job: &Job) -> Snapshot {
    Snapshot {
        status: job.status.clone(),
        count: i64::from(job.done_count),
        finished: job.status == "done",
        note: job.finished_at.map_or_else(
            || "updates until the job is done".to_string(),
            |t| format!("finished {}", t.format("%H:%M:%S UTC")),
        ),
    }
}

pub fn delivery_snapshot(d: &Delivery) -> Snapshot {
    let status = d.status.as_str();
    Snapshot {
        status: status.to_string(),
        count: i64::from(d.attempts),
        finished: matches!(status, "delivered" | "dead" | "cancelled"),
        note: d
            .next_attempt_at
            .map(|t| format!("next attempt {}", ago(t)))
            .unwrap_or_default(),
    }
}

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
