//! The `hookrelay` command line: parse, load config, start telemetry, run a role.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use hookrelay_core::{Config, telemetry};
use tokio_util::sync::CancellationToken;

// Many small, short-lived allocations across threads (requests, rows, messages):
// mimalloc measured clearly faster than the system allocator under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hookrelay", version, about = "A reliable webhook delivery gateway", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Gateway and dispatcher in one process (applies migrations first).
    Serve,
    /// The HTTP API only.
    Gateway,
    /// The router and senders only.
    Dispatcher,
    /// The web console only (also served by `serve` and `gateway` at /console).
    Console,
    /// Apply database migrations and exit.
    Migrate,
    /// Dead-letter tooling: list, show, replay, purge, stats.
    Dlq {
        #[command(subcommand)]
        command: hookrelay::dlq::DlqCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    let config = Config::from_env()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(hookrelay::cancel_on_signal(shutdown.clone()));
    match cli.command {
        Command::Serve => hookrelay::serve(config, shutdown).await,
        Command::Gateway => hookrelay::gateway(config, shutdown).await,
        Command::Dispatcher => hookrelay::dispatcher(config, shutdown).await,
        Command::Console => hookrelay::console(config, shutdown).await,
        Command::Migrate => hookrelay::migrate(&config).await,
        Command::Dlq { command } => hookrelay::dlq(&config, command).await,
    }
}
