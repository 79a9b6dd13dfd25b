//! The command line: every command, and reading the settings it runs with. A
//! command that needs no settings (`openapi`) runs without them; the others get a
//! checked `Config`, or the process ends with a message naming the setting at fault.

use clap::error::ErrorKind;
use clap::{Args as _, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use hookrelay_core::Config;
use hookrelay_core::config::{self, Parsed};

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
    #[command(flatten)]
    Run(Role),
    /// Print every setting with the value in effect (secrets masked) and its source.
    Config,
    /// Print the API's OpenAPI document (the one served at /openapi.json).
    Openapi,
}

/// The commands that run with the settings, telemetry and a shutdown signal.
#[derive(Subcommand)]
pub enum Role {
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
    /// Master keys: re-encrypt every endpoint secret under the current key, or
    /// show how far that got.
    Keys {
        #[command(subcommand)]
        command: crate::keys::KeysCommand,
    },
    /// Named operator accounts: add one (prints its token), list them, disable one.
    Operators {
        #[command(subcommand)]
        command: crate::operators::OperatorsCommand,
    },
    /// Dead-letter tooling: list, show, replay, purge, stats.
    Dlq {
        #[command(subcommand)]
        command: crate::dlq::DlqCommand,
    },
}

/// What the command line asks for.
pub enum Invocation {
    /// The OpenAPI document: the same for every installation, so no settings.
    Openapi,
    /// The settings in effect, described.
    Config(Box<Parsed>, Box<Config>),
    Run(Role, Box<Config>),
}

/// Reads the command line and the environment. Help, version and bad input end
/// the process here, with clap's message or one naming the `HOOKRELAY_*` setting.
pub fn invocation() -> anyhow::Result<Invocation> {
    // Needs no settings (not even the encryption key), so it is read first.
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        return Ok(Invocation::Openapi);
    }
    // `cli` declares every setting with its variable, so `--help` shows them; the
    // values themselves are read by `config::parse`, trimmed, flags first.
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
    Ok(match Cli::from_arg_matches(&parsed.matches)?.command {
        // Also when settings were given before it.
        Command::Openapi => Invocation::Openapi,
        Command::Config => {
            let config = checked(&parsed);
            Invocation::Config(Box::new(parsed), config)
        }
        Command::Run(role) => Invocation::Run(role, checked(&parsed)),
    })
}

/// The settings, or the end of the process with what is wrong with them.
fn checked(parsed: &Parsed) -> Box<Config> {
    match Config::from_matches(&parsed.matches) {
        Ok(config) => Box::new(config),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
