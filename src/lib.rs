//! hookrelay: the one binary's roles — `serve` (gateway and dispatcher in one
//! process), `gateway`, `dispatcher` and `migrate` — wired from the library crates,
//! with shutdown on Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

pub mod dlq;
pub mod dlq_broker;

use anyhow::Context as _;
use hookrelay_core::{Config, Store};
use hookrelay_dispatcher::Dispatcher;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn store(config: &Config) -> anyhow::Result<Store> {
    Store::connect_lazy(
        config.database_url.expose(),
        config.database_max_connections,
    )
    .context("HOOKRELAY_DATABASE_URL is not a usable Postgres URL")
}

/// Runs an operator's dead-letter command and prints its output.
pub async fn dlq(config: &Config, cmd: dlq::DlqCommand) -> anyhow::Result<()> {
    let store = store(config)?;
    let out = match cmd {
        dlq::DlqCommand::Broker { command } => dlq_broker::run(config, &store, command).await,
        cmd => dlq::run(&store, cmd).await,
    };
    let out = out?;
    println!("{out}");
    store.close().await;
    Ok(())
}

/// Applies pending migrations.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = store(config)?;
    store
        .migrate()
        .await
        .context("applying migrations (is Postgres reachable at HOOKRELAY_DATABASE_URL?)")?;
    store.close().await;
    Ok(())
}

/// Runs the HTTP API until `shutdown`.
pub async fn gateway(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding HOOKRELAY_LISTEN={}", config.listen))?;
    announce(&listener)?;
    let state = hookrelay_gateway::build_state(config.clone(), store(&config)?).await;
    hookrelay_gateway::serve(state, listener, shutdown)
        .await
        .context("serving HTTP")
}

/// Serves only the web console until `shutdown`.
pub async fn console(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding HOOKRELAY_LISTEN={}", config.listen))?;
    tracing::info!(
        "hookrelay console on http://{}/console",
        listener.local_addr()?
    );
    let state = hookrelay_console::ConsoleState::new(&config, store(&config)?, None);
    axum::serve(listener, hookrelay_console::router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving the console")
}

/// Runs the dispatcher until `shutdown`.
pub async fn dispatcher(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = store(&config)?;
    Dispatcher::new(config, store)
        .run(shutdown)
        .await
        .context("running the dispatcher")
}

/// Migrates, then runs gateway and dispatcher together until `shutdown`.
pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    migrate(&config).await?;
    let dispatcher = tokio::spawn(dispatcher(config.clone(), shutdown.clone()));
    let served = gateway(config, shutdown.clone()).await;
    shutdown.cancel();
    let dispatched = dispatcher.await.context("dispatcher task")?;
    served.and(dispatched)
}

fn announce(listener: &TcpListener) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!("hookrelay API listening on http://{addr}, console at http://{addr}/console");
    Ok(())
}

/// Fires `token` on Ctrl-C or SIGTERM.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
    token.cancel();
}
