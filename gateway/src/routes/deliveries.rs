//! Reading deliveries and their attempts (request headers, response, timing, error).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::model::{Attempt, Delivery, DeliveryStatus, Page};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, path_id};
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries", get(list))
        .route("/v1/tenants/{tenant}/deliveries/{id}", get(show))
        .route(
            "/v1/tenants/{tenant}/deliveries/{id}/attempts",
            get(attempts),
        )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    after: Option<String>,
    status: Option<DeliveryStatus>,
    /// Only this event's deliveries.
    #[param(value_type = Option<uuid::Uuid>)]
    event_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/deliveries",
    tag = "deliveries",
    summary = "List a tenant's deliveries",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ListParams),
    responses((status = 200, description = "A page of deliveries", body = Page<Delivery>)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Params(q): Params<ListParams>,
) -> ApiResult<Json<Page<Delivery>>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let page = crate::extract::PageParams { limit: q.limit, after: q.after };
    let event_id = match q.event_id.as_deref() {
        Some(raw) => Some(
            uuid::Uuid::parse_str(raw)
                .map_err(|_| ApiError::bad_request("event_id is not a valid id"))?,
        ),
        None => None,
    };
    let limit = page.limit()?;
    let rows = state
        .store
        .list_deliveries(tenant.id, event_id, q.status, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |d| d.id)))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/deliveries/{id}",
    tag = "deliveries",
    summary = "Show a delivery",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The delivery's id")),
    responses((status = 200, description = "The delivery", body = Delivery)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Delivery>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let id = path_id(&id, "delivery")?;
    state
        .store
        .get_delivery(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("delivery"))
}

/// A page of attempts, oldest first (`next` continues after the last one).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/deliveries/{id}/attempts",
    tag = "deliveries",
    summary = "List a delivery's attempts, oldest first",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The delivery's id"), crate::extract::PageParams),
    responses((status = 200, description = "A page of attempts", body = Page<Attempt>)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Params(page): Params<crate::extract::PageParams>,
) -> ApiResult<Json<Page<Attempt>>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let id = path_id(&id, "delivery")?;
    let limit = page.limit()?;
    let after = page.after()?;
    if state.store.get_delivery(tenant.id, id).await?.is_none() {
        return Err(ApiError::not_found("delivery"));
    }
    let rows = state
        .store
        .list_attempts(tenant.id, id, limit, after)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |a| a.id)))
}
