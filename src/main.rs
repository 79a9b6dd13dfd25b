//! The `hookrelay` command line: parse, load config, start telemetry, run a role.
#![forbid(unsafe_code)]

use clap::error::ErrorKind;
use clap::{Args as _, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use hookrelay_core::{Config, config, telemetry};
use tokio_util::sync::CancellationToken;

// Many small, short-lived allocations across threads (requests, rows, messages):
// mimalloc measured clearly faster than the system allocator under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hookrelay",
    version,
    about = "A reliable webhook delivery gateway",
    long_about = None,
    after_help = "Each setting is read from its HOOKRELAY_* environment variable, or from its flag given before the command. `hookrelay config` prints the values in effect."
)]
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
    /// Print every setting with the value in effect (secrets masked) and its source.
    Config,
    /// Print the API's OpenAPI document (the one served at /openapi.json).
    Openapi,
    /// Master keys: re-encrypt every endpoint secret under the current key, or
    /// show how far that got.
    Keys {
        #[command(subcommand)]
        command: hookrelay::keys::KeysCommand,
    },
    /// Named operator accounts: add one (prints its token), list them, disable one.
    Operators {
        #[command(subcommand)]
        command: hookrelay::operators::OperatorsCommand,
    },
    /// Dead-letter tooling: list, show, replay, purge, stats.
    Dlq {
        #[command(subcommand)]
        command: hookrelay::dlq::DlqCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cli` declares every setting with its variable, so `--help` shows them; the
    // values themselves are read by `config::parse`, trimmed, flags first.
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        // Needs no settings (not even the encryption key): the document is the same
        // for every installation.
        print!("{}", hookrelay_gateway::openapi_json());
        return Ok(());
    }
    let cli = Config::augment_args(Cli::command());
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match config::parse(cli.clone(), args.clone(), |name| std::env::var(name).ok()) {
        Ok(p) => p,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            // The help of the command as declared, with each setting's variable.
            match cli.try_get_matches_from(args) {
                Err(help) if help.kind() == e.kind() => help.exit(),
                _ => e.exit(),
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ValueValidation
                    | ErrorKind::InvalidValue
                    | ErrorKind::MissingRequiredArgument
            ) && config::explain(&e).name.starts_with("HOOKRELAY_") =>
        {
            eprintln!("error: {}", config::explain(&e));
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&parsed.matches)?;
    let config = match Config::from_matches(&parsed.matches) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Command::Config = cli.command {
        println!("{}", config::describe(&parsed));
        for warning in hookrelay::plaintext_warnings(&config) {
            eprintln!("warning: {warning}");
        }
        return Ok(());
    }
    // Before any HTTP client is built (the span exporter's is the first).
    hookrelay_dispatcher::client::install_tls_provider();
    let telemetry = telemetry::init(&config.log);
    hookrelay_core::metrics::handle();
    let shutdown = CancellationToken::new();
    tokio::spawn(hookrelay::cancel_on_signal(shutdown.clone()));
    if let Some(addr) = config.http.metrics_listen {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = hookrelay::metrics_listener(addr, stop).await {
                tracing::error!(error = format!("{e:#}"), "metrics listener stopped");
            }
        });
    }
    for warning in hookrelay::plaintext_warnings(&config) {
        tracing::warn!("{warning}");
    }
    let ran = match cli.command {
        Command::Serve => hookrelay::serve(config, shutdown).await,
        Command::Gateway => hookrelay::gateway(config, shutdown).await,
        Command::Dispatcher => hookrelay::dispatcher(config, shutdown).await,
        Command::Console => hookrelay::console(config, shutdown).await,
        Command::Migrate => hookrelay::migrate(&config).await,
        Command::Openapi => {
            print!("{}", hookrelay_gateway::openapi_json());
            Ok(())
        }
        Command::Config => Ok(()),
        Command::Dlq { command } => hookrelay::dlq(&config, command).await,
        Command::Keys { command } => hookrelay::keys(&config, command).await,
        Command::Operators { command } => hookrelay::operators(&config, command).await,
    };
    telemetry.shutdown().await;
    ran
}
