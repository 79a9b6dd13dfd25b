//! Reading deliveries and their attempts (request headers, response, timing, error).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::model::{Attempt, Delivery, DeliveryStatus, Page};
use serde::Deserialize;

use crate::auth::Producer;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, path_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries", get(list))
        .route("/v1/tenants/{tenant}/deliveries/{id}", get(show))
        .route(
            "/v1/tenants/{tenant}/deliveries/{id}/attempts",
            get(attempts),
        )
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<u32>,
    after: Option<String>,
    status: Option<DeliveryStatus>,
    event_id: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    _p: Producer,
    Path(tenant): Path<String>,
    Params(q): Params<ListParams>,
) -> ApiResult<Json<Page<Delivery>>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let page = crate::extract::PageParams {
        limit: q.limit,
        after: q.after,
    };
    let event_id = match q.event_id.as_deref() {
        Some(raw) => Some(
            uuid::Uuid::parse_str(raw)
                .map_err(|_| ApiError::bad_request("event_id is not a valid id"))?,
        ),
        None => None,
    };
    let limit = page.limit();
    let rows = state
        .store
        .list_deliveries(tenant.id, event_id, q.status, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |d| d.id)))
}

async fn show(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Delivery>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "delivery")?;
    state
        .store
        .get_delivery(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("delivery"))
}

/// All attempts, oldest first (a delivery has a bounded number of them).
async fn attempts(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Page<Attempt>>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "delivery")?;
    if state.store.get_delivery(tenant.id, id).await?.is_none() {
        return Err(ApiError::not_found("delivery"));
    }
    let data = state.store.list_attempts(tenant.id, id).await?;
    Ok(Json(Page { data, next: None }))
}
