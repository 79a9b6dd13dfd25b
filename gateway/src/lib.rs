//! hookrelay-gateway: the HTTP API — ingest (publish-and-confirm, no database on the
//! path), tenants, endpoints, events, deliveries and attempts; authentication.
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod routes;
pub mod state;
pub mod tenant_cache;

use std::sync::Arc;

use axum::Router;
use hookrelay_core::queue::Publisher;
use hookrelay_core::{Config, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use state::AppState;

/// Builds the state: a lazy broker publisher and warm caches (best effort: a
/// gateway starts even while Postgres or RabbitMQ are down, and reports it on `/readyz`).
pub async fn build_state(config: Config, store: Store) -> AppState {
    let topology = config.topology();
    let publisher = Arc::new(Publisher::new(
        config.amqp_url.expose().clone(),
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

/// The application without a socket, for tests that call it directly.
/// The API and, under `/console`, the web console.
pub fn app(state: AppState) -> Router {
    // The console publishes through the gateway's connection, and a key revoked in
    // it stops working on this gateway at once.
    let keys = state.clone();
    let host = hookrelay_console::Host {
        publisher: state.publisher.clone(),
        key_revoked: std::sync::Arc::new(move |hash: &[u8]| keys.keys.remove(hash)),
    };
    let console =
        hookrelay_console::ConsoleState::new(&state.config, state.store.clone(), Some(host));
    routes::router(state).merge(hookrelay_console::router(console))
}

/// Serves the API on `listener` until `shutdown` fires, then finishes open requests.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let refresh = {
        let (state, cancel) = (state.clone(), shutdown.clone());
        tokio::spawn(async move { state.keys.refresh_loop(state.store.clone(), cancel).await })
    };
    let result = axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    let _ = refresh.await;
    state.publisher.close().await;
    result
}
