//! Tenants: the producer's customers. Addressable by id or by the producer's own `uid`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::ids::new_id;
use hookrelay_core::model::{Page, Tenant};
use hookrelay_core::rules::{TenantName, TenantUid};
use serde::Deserialize;

use crate::auth::Producer;
use crate::error::ApiResult;
use crate::extract::{Body, PageParams, Params};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", get(list).post(create))
        .route("/v1/tenants/{tenant}", get(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: String,
    #[serde(default)]
    uid: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    _p: Producer,
    Body(req): Body<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    let name = TenantName::parse(&req.name)?;
    let uid = req.uid.as_deref().map(TenantUid::parse).transpose()?;
    let tenant = state
        .store
        .insert_tenant(new_id(), uid.as_ref(), &name)
        .await?;
    state.tenants.insert(&tenant);
    Ok((StatusCode::CREATED, Json(tenant)))
}

async fn show(
    State(state): State<AppState>,
    _p: Producer,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(state.tenants.resolve(&state.store, &tenant).await?))
}

async fn list(
    State(state): State<AppState>,
    _p: Producer,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Tenant>>> {
    let limit = page.limit();
    let rows = state.store.list_tenants(limit, page.after()?).await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |t| t.id)))
}
