//! hookrelay-gateway: the HTTP API — ingest (publish-and-confirm, no database on the
//! path), tenants, endpoints, events, deliveries and attempts; authentication.
#![forbid(unsafe_code)]

pub mod access_changes;
pub mod auth;
pub mod budget;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod http_metrics;
pub mod ingest;
pub mod lanes;
pub mod quota;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod state;
pub mod tenant_cache;

use std::sync::Arc;

use axum::Router;
use hookrelay_core::queue::{Broker, Publisher};
use hookrelay_core::{Config, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use routes::contract::document_json as openapi_json;
pub use state::AppState;

/// Builds the state: a lazy broker publisher and warm caches (best effort: a
/// gateway starts even while Postgres or RabbitMQ are down, and reports it on `/readyz`).
pub async fn build_state(config: Config, store: Store) -> AppState {
    hookrelay_core::metrics::handle();
    metrics::counter!(hookrelay_core::metrics::EVENTS_ACCEPTED).increment(0);
    metrics::counter!(hookrelay_core::metrics::EVENTS_BULK).increment(0);
    let topology = config.topology();
    let publisher = Arc::new(Publisher::new(
        Broker::from_settings(&config.broker),
        "gateway",
        topology,
    ));
    if let Err(e) = publisher.channel().await {
        tracing::warn!(error = %e, "broker not reachable yet; ingest answers 503 until it is");
    }
    let state = AppState::new(config, store, publisher);
    if let Err(e) = state.keys.reload(&state.store).await {
        tracing::warn!(error = %e, "cannot load API keys yet");
    }
    if let Err(e) = state.tenants.preload(&state.store).await {
        tracing::warn!(error = %e, "cannot load tenants yet");
    }
    state
}

/// The API's routes, without a socket (in-process tests call it directly).
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves `app` (the API, perhaps with more routes merged in) on `listener` until
/// `shutdown` fires, then finishes open requests; keeps the key cache fresh meanwhile.
pub async fn serve(
    state: AppState,
    app: Router,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let refresh = {
        let (state, cancel) = (state.clone(), shutdown.clone());
        tokio::spawn(async move {
            tokio::join!(
                state.keys.refresh_loop(state.store.clone(), cancel.clone()),
                state.tenants.refresh_loop(state.store.clone(), cancel),
            )
        })
    };
    let access = tokio::spawn(hookrelay_core::queue::access::listen(
        state.publisher.broker().clone(),
        state.config.topology(),
        access_changes::Caches(state.clone()),
        shutdown.clone(),
    ));
    let gauges = tokio::spawn(hookrelay_core::gauges::sample_until(
        state.store.clone(),
        state.config.topology(),
        state.publisher.broker().clone(),
        shutdown.clone(),
    ));
    let app = forwarded::behind(app, &state.config.http.trusted_proxies);
    let limits = server::Limits::from_settings(&state.config.http);
    let result = server::run(listener, app, limits, shutdown.clone()).await;
    shutdown.cancel();
    let _ = refresh.await;
    let _ = gauges.await;
    let _ = access.await;
    state.publisher.close().await;
    result
}
