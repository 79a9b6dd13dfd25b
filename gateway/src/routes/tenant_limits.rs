//! `PUT /v1/admin/tenants/{tenant}/limits`: the operator sets a tenant's own
//! quotas (ingest rate, endpoints), replacing the configured defaults.

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use hookrelay_core::model::Tenant;
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/tenants/{tenant}/limits", put(set))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsIn {
    /// Events per second the tenant may ingest through each gateway; `null` or
    /// absent: `HOOKRELAY_TENANT_INGEST_RATE`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000_000)]
    ingest_rate: Option<i32>,
    /// Most endpoints the tenant may have; `null` or absent: `HOOKRELAY_TENANT_MAX_ENDPOINTS`.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000)]
    max_endpoints: Option<i32>,
}

/// Takes effect at once on this gateway, and on the others as soon as they hear it
/// on the access fanout.
#[utoipa::path(
    put,
    path = "/v1/admin/tenants/{tenant}/limits",
    tag = "tenants",
    summary = "Set a tenant's own quotas",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    request_body = LimitsIn,
    responses((status = 200, description = "The tenant with its limits", body = Tenant)),
    security(("admin_token" = [])),
)]
pub(super) async fn set(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(tenant): Path<String>,
    Body(req): Body<LimitsIn>,
) -> ApiResult<Json<Tenant>> {
    if req
        .ingest_rate
        .is_some_and(|r| !(1..=10_000_000).contains(&r))
    {
        return Err(ApiError::invalid("ingest_rate must be from 1 to 10000000"));
    }
    if req
        .max_endpoints
        .is_some_and(|m| !(0..=1_000_000).contains(&m))
    {
        return Err(ApiError::invalid("max_endpoints must be from 0 to 1000000"));
    }
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let tenant = state
        .store
        .set_tenant_limits(tenant.id, req.ingest_rate, req.max_endpoints, &by)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    state.tenants.insert(&tenant);
    hookrelay_core::queue::access::announce(
        &state.publisher,
        &hookrelay_core::queue::access::AccessChange::TenantChanged { tenant: tenant.id },
    )
    .await;
    Ok(Json(tenant))
}
