//! Job pages: a customer's recovery, an operator's dead-letter replay.

use axum::extract::{Path, State};
use axum::response::Response;

use crate::components::job_progress::job_page;
use crate::page_errors::{self, or_page, unavailable};
use crate::session::{AdminSession, TenantSession};
use crate::state::ConsoleState;
use crate::view::{self, Nav};

pub async fn tenant_job(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    match state.store.get_job(id).await {
        Ok(Some(job)) if job.tenant_id == Some(s.tenant) => job_page(job, Nav::Tenant),
        Ok(_) => view::not_found(Nav::Tenant),
        Err(e) => unavailable(e, Nav::Tenant),
    }
}

pub async fn admin_job(
    State(state): State<ConsoleState>,
    _s: AdminSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Admin));
    match state.store.get_job(id).await {
        Ok(Some(job)) => job_page(job, Nav::Admin),
        Ok(None) => view::not_found(Nav::Admin),
        Err(e) => unavailable(e, Nav::Admin),
    }
}
