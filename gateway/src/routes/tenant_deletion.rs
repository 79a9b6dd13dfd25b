//! Deleting a tenant: `DELETE /v1/tenants/{tenant}` marks it deleted at once (it
//! is then not found, and its undelivered deliveries are dead-lettered with the
//! reason `tenant deleted`) and starts the job that removes its rows in chunks;
//! `GET /v1/tenant-deletions/{id}` shows how far that got.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookrelay_core::access::Permission;
use hookrelay_core::store::TenantDeletion;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::path_id;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}", delete(delete_tenant))
        .route("/v1/tenant-deletions/{id}", get(show_deletion))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    summary = "Delete a tenant with everything it has, as a job",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    responses((status = 202, description = "Deleted for the API at once; its rows go in chunks", body = TenantDeletion)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn delete_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<(StatusCode, Json<TenantDeletion>)> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::TenantsWrite)
        .await?;
    let deletion = state
        .store
        .start_tenant_deletion(tenant.id, &caller.actor)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    state.tenants.remove(tenant.id);
    hookrelay_core::queue::access::announce(
        &state.publisher,
        &hookrelay_core::queue::access::AccessChange::TenantDeleted { tenant: tenant.id },
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(deletion)))
}

#[utoipa::path(
    get,
    path = "/v1/tenant-deletions/{id}",
    tag = "tenants",
    summary = "Show a tenant deletion and its progress",
    params(("id" = String, Path, description = "The deletion's id")),
    responses((status = 200, description = "The deletion", body = TenantDeletion)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn show_deletion(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantDeletion>> {
    let id = path_id(&id, "tenant deletion")?;
    let deletion = state
        .store
        .get_tenant_deletion(id)
        .await?
        .filter(|d| caller.reaches(d.tenant_id))
        .ok_or_else(|| ApiError::not_found("tenant deletion"))?;
    caller.require(Permission::TenantsWrite)?;
    Ok(Json(deletion))
}
