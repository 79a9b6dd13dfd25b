//! hookrelay: the one binary's roles — `serve` (gateway and dispatcher in one
//! process), `gateway`, `dispatcher`, `console` and `migrate` — composed from the
//! library crates (the API and the console merged into one router here), with
//! shutdown on Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

pub mod cli;
pub mod dlq;
pub mod dlq_broker;
pub mod keys;
pub mod operators;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use hookrelay_console::ConsoleState;
use hookrelay_core::actions::Actions;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::key_cache::KeyCache;
use hookrelay_core::queue::Publisher;
use hookrelay_core::{Config, Store};
use hookrelay_dispatcher::Dispatcher;
use hookrelay_gateway::AppState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.database).context("HOOKRELAY_DATABASE_URL is not a usable Postgres URL")
}

/// The store, once the master keys are known to read what it holds: a process
/// with the wrong key refuses to start instead of failing every delivery. With
/// the database unreachable the check is left for later, with a warning (the
/// gateway keeps ingesting without the database).
async fn checked_store(config: &Config) -> anyhow::Result<Store> {
    let store = store(config)?;
    let cipher = Cipher::with_keys(&config.security.master_keys());
    match hookrelay_core::master_keys::check(&store, &cipher).await {
        Ok(0) => {}
        Ok(failed) => tracing::warn!(
            failed,
            "some sampled endpoint secrets do not decrypt with the configured keys"
        ),
        Err(hookrelay_core::master_keys::KeyCheckError::Store(e)) => {
            tracing::warn!(error = %e, "cannot check the master keys against the database yet");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(store)
}

/// The connections that would carry credentials and events unencrypted off this
/// machine, one sentence each: logged as warnings at start, printed by `config`.
pub fn plaintext_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(host) = hookrelay_core::store::plaintext_remote(&config.database) {
        warnings.push(format!(
            "the database connection may be unencrypted: HOOKRELAY_DATABASE_URL reaches \
             {host} without sslmode=require, verify-ca or verify-full"
        ));
    }
    let broker = hookrelay_core::queue::Broker::from_settings(&config.broker);
    for node in broker.plaintext_remote_nodes() {
        warnings.push(format!(
            "the broker connection is unencrypted: HOOKRELAY_AMQP_URL reaches {node} \
             with amqp://, not amqps://"
        ));
    }
    warnings
}

/// Runs `hookrelay keys …`.
pub async fn keys(config: &Config, cmd: keys::KeysCommand) -> anyhow::Result<()> {
    let store = store(config)?;
    let out = keys::run(config, &store, cmd).await;
    store.close().await;
    println!("{}", out?);
    Ok(())
}

/// Runs `hookrelay operators …` and prints its output.
pub async fn operators(config: &Config, cmd: operators::OperatorsCommand) -> anyhow::Result<()> {
    let store = store(config)?;
    let out = operators::run(&store, cmd).await;
    store.close().await;
    println!("{}", out?);
    Ok(())
}

/// Prints every setting in effect with its source, and what is sent in plain text.
pub fn print_config(parsed: &hookrelay_core::config::Parsed, config: &Config) {
    println!("{}", hookrelay_core::config::describe(parsed));
    for warning in plaintext_warnings(config) {
        eprintln!("warning: {warning}");
    }
}

/// Runs one command: telemetry and metrics first, then the role until it ends
/// or `Ctrl-C`/SIGTERM stops it.
pub async fn run(role: cli::Role, config: Config) -> anyhow::Result<()> {
    use cli::Role;
    // Before any HTTP client is built (the span exporter's is the first).
    hookrelay_dispatcher::client::install_tls_provider();
    let telemetry = hookrelay_core::telemetry::init(&config.log);
    hookrelay_core::metrics::handle();
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    if let Some(addr) = config.http.metrics_listen {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = metrics_listener(addr, stop).await {
                tracing::error!(error = format!("{e:#}"), "metrics listener stopped");
            }
        });
    }
    for warning in plaintext_warnings(&config) {
        tracing::warn!("{warning}");
    }
    let ran = match role {
        Role::Serve => serve(config, shutdown).await,
        Role::Gateway => gateway(config, shutdown).await,
        Role::Dispatcher => dispatcher(config, shutdown).await,
        Role::Console => console(config, shutdown).await,
        Role::Migrate => migrate(&config).await,
        Role::Dlq { command } => dlq(&config, command).await,
        Role::Keys { command } => keys(&config, command).await,
        Role::Operators { command } => operators(&config, command).await,
    };
    telemetry.shutdown().await;
    ran
}

/// Runs an operator's dead-letter command and prints its output.
pub async fn dlq(config: &Config, cmd: dlq::DlqCommand) -> anyhow::Result<()> {
    let store = store(config)?;
    let out = dlq::run(config, &store, cmd).await?;
    println!("{out}");
    store.close().await;
    Ok(())
}

/// Applies pending migrations.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = store(config)?;
    store.migrate().await.context(
        "applying migrations (is Postgres reachable at HOOKRELAY_DATABASE_URL, and with \
             sslmode=verify-ca or verify-full, is its certificate signed by a CA in \
             HOOKRELAY_DATABASE_CA_FILE or the system's roots?)",
    )?;
    store.close().await;
    Ok(())
}

/// Runs the HTTP API until `shutdown`.
pub async fn gateway(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HOOKRELAY_LISTEN={}", config.http.listen))?;
    announce(&listener)?;
    let state = hookrelay_gateway::build_state(config.clone(), checked_store(&config).await?).await;
    serve_http(state, listener, shutdown)
        .await
        .context("serving HTTP")
}

/// The API with the console under `/console`: the console acts through the
/// gateway's own actions, so both publish on one connection and a key revoked in
/// either is refused at once by this process.
pub fn app(state: &AppState) -> Router {
    let console = ConsoleState::new(&state.config, state.store.clone(), state.actions.clone());
    hookrelay_gateway::app(state.clone()).merge(hookrelay_console::router(console))
}

/// Serves the API and the console on `listener` until `shutdown`.
pub async fn serve_http(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = app(&state);
    hookrelay_gateway::serve(state, app, listener, shutdown).await
}

/// Serves only the web console until `shutdown`.
pub async fn console(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HOOKRELAY_LISTEN={}", config.http.listen))?;
    tracing::info!(
        "hookrelay console on http://{}/console",
        listener.local_addr()?
    );
    let store = checked_store(&config).await?;
    let publisher = Arc::new(Publisher::new(
        hookrelay_core::queue::Broker::from_settings(&config.broker),
        "console",
        config.topology(),
    ));
    let actions = Actions::configured(&config, store.clone(), publisher, Arc::new(KeyCache::new()));
    let state = ConsoleState::new(&config, store, actions);
    let app = hookrelay_gateway::forwarded::behind(
        hookrelay_console::router(state),
        &config.http.trusted_proxies,
    );
    let limits = hookrelay_gateway::server::Limits::from_settings(&config.http);
    hookrelay_gateway::server::run(listener, app, limits, shutdown)
        .await
        .context("serving the console")
}

/// Runs the dispatcher until `shutdown`.
pub async fn dispatcher(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = checked_store(&config).await?;
    Dispatcher::new(config, store)
        .run(shutdown)
        .await
        .context("running the dispatcher")
}

/// Serves `/metrics` alone on `HOOKRELAY_METRICS_LISTEN` until `shutdown` (a
/// dispatcher has no API port to serve it on).
pub async fn metrics_listener(
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding HOOKRELAY_METRICS_LISTEN={addr}"))?;
    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
    let app = Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    hookrelay_core::metrics::CONTENT_TYPE,
                )],
                hookrelay_core::metrics::render(),
            )
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving metrics")
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
