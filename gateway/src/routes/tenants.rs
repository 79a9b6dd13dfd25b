//! Tenants: the producer's customers. Addressable by id or by the producer's own `uid`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::ids::new_id;
use hookrelay_core::model::{Page, Tenant};
use serde::Deserialize;

use crate::auth::Producer;
use crate::error::{ApiError, ApiResult};
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
    let name = req.name.trim();
    hookrelay_core::rules::check_tenant(name, req.uid.as_deref()).map_err(ApiError::invalid)?;
    let tenant = state
        .store
        .insert_tenant(new_id(), req.uid.as_deref(), name)
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
