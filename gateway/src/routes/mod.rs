//! The HTTP API's routes; each resource module exposes its own `router()`.

mod admin;
mod api_keys;
mod audit;
mod bodies;
mod broker_dead;
mod console_links;
mod console_sessions;
pub mod contract;
mod deliveries;
mod delivery_controls;
mod docs;
mod endpoint_actions;
mod endpoints;
mod events;
mod health;
mod replay;
mod tenant_deletion;
mod tenant_limits;
mod tenants;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use events::BATCH_BODY_FACTOR as BATCH_FACTOR;
pub use events::{batch_body_status, event_body_status};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let limit = state.config.http.max_payload_bytes;
    Router::new()
        .merge(health::router())
        .route("/openapi.json", axum::routing::get(contract::serve))
        .merge(docs::router())
        .merge(api_keys::router())
        .merge(tenants::router())
        .merge(endpoints::router())
        .merge(endpoint_actions::router())
        .merge(delivery_controls::router())
        .merge(events::router(limit))
        .merge(deliveries::router())
        .merge(replay::router())
        .merge(admin::router())
        .merge(broker_dead::router())
        .merge(console_links::router())
        .merge(console_sessions::router())
        .merge(audit::router())
        .merge(tenant_limits::router())
        .merge(tenant_deletion::router())
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .route_layer(axum::middleware::from_fn(crate::http_metrics::track))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(crate::request_id::assign))
        .with_state(state)
}
