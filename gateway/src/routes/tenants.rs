//! Tenants: the producer's customers. Addressable by id or by the producer's own `uid`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::ids::new_id;
use hookrelay_core::model::{Page, Tenant};
use hookrelay_core::validation::{TenantName, TenantUid};
use serde::Deserialize;

use super::bodies::ErrorBody;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Body, PageParams, Params};
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", get(list).post(create))
        .route("/v1/tenants/{tenant}", get(show))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTenant {
    /// 1 to 256 characters once trimmed, no control characters.
    #[schema(
        max_length = 256,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Acme"
    )]
    name: String,
    /// Your own id for the tenant, usable wherever a tenant id is: 1 to 128
    /// letters, digits, `-`, `_` or `.`, and not a UUID.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$", example = "acme")]
    uid: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    summary = "Create a tenant",
    request_body = CreateTenant,
    responses((status = 201, description = "Created", body = Tenant), (status = 409, description = "The uid is taken", body = ErrorBody)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    caller.require_global(Permission::TenantsWrite)?;
    let name = TenantName::parse(&req.name)?;
    let uid = req.uid.as_deref().map(TenantUid::parse).transpose()?;
    let tenant = state
        .store
        .insert_tenant(new_id(), uid.as_ref(), &name, &caller.actor)
        .await?;
    state.tenants.insert(&tenant);
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    summary = "Show a tenant",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    responses((status = 200, description = "The tenant", body = Tenant)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(
        caller.tenant(&state, &tenant, Permission::Read).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    summary = "List tenants (those the key reaches)",
    params(crate::extract::PageParams),
    responses((status = 200, description = "A page of tenants", body = Page<Tenant>)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Tenant>>> {
    caller.require(Permission::Read)?;
    let limit = page.limit()?;
    let rows = state
        .store
        .list_tenants(limit, page.after()?, caller.scope())
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |t| t.id)))
}
