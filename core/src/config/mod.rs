//! Runtime configuration. Every setting is declared once, in `settings`: its
//! `HOOKRELAY_*` name, type, default, range and help, grouped by concern. They are
//! read from the environment (or `--flags`, `layering`), parsed into checked values
//! (`values`) once at start with errors that name the setting; `hookrelay --help`
//! lists them all with their defaults and `hookrelay config` prints the values in
//! effect (secrets masked). The master keys are checked beside them, in `crypto`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Command, FromArgMatches};

use crate::target_policy::TargetPolicy;

mod layering;
mod settings;
mod values;

pub use layering::{Parsed, describe, explain, parse};
pub use settings::{
    BreakerSettings, BrokerSettings, ConsoleSettings, DEFAULT_FILTER, DatabaseSettings,
    DeliverySettings, DispatcherSettings, HttpSettings, LogFormat, LogSettings, QuotaSettings,
    RetentionSettings, RetrySettings, SecuritySettings,
};
pub use values::{PemFile, Sensitive};

/// A setting that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

impl ConfigError {
    /// An error about the setting declared as field `id`, named as declared.
    pub(crate) fn setting(id: &str, reason: impl Into<String>) -> Self {
        Self { name: env_name(id), reason: reason.into() }
    }
}

/// The `HOOKRELAY_*` variable of the setting declared as field `id`: messages name
/// settings through their declaration, never by a second spelling.
pub(crate) fn env_name(id: &str) -> String {
    Config::augment_args(clap::Command::new("hookrelay"))
        .get_arguments()
        .find(|a| a.get_id() == id)
        .and_then(|a| a.get_env())
        .map_or_else(|| id.to_string(), |e| e.to_string_lossy().into_owned())
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten, next_help_heading = "Database")]
    pub database: DatabaseSettings,
    #[command(flatten, next_help_heading = "Broker")]
    pub broker: BrokerSettings,
    #[command(flatten, next_help_heading = "HTTP API")]
    pub http: HttpSettings,
    #[command(flatten, next_help_heading = "Console")]
    pub console: ConsoleSettings,
    #[command(flatten, next_help_heading = "Security")]
    pub security: SecuritySettings,
    #[command(flatten, next_help_heading = "Quotas (per tenant)")]
    pub quotas: QuotaSettings,
    #[command(flatten, next_help_heading = "Delivery")]
    pub delivery: DeliverySettings,
    #[command(flatten, next_help_heading = "Retries")]
    pub retry: RetrySettings,
    #[command(flatten, next_help_heading = "Circuit breaker (per endpoint)")]
    pub breaker: BreakerSettings,
    #[command(flatten, next_help_heading = "Dispatcher")]
    pub dispatcher: DispatcherSettings,
    #[command(flatten, next_help_heading = "Retention")]
    pub retention: RetentionSettings,
    #[command(flatten, next_help_heading = "Logs")]
    pub log: LogSettings,
}

impl Config {
    /// Every setting as a command-line argument (with its environment variable).
    pub fn command() -> Command {
        Self::augment_args(Command::new("hookrelay"))
    }

    /// Defaults for a developer machine. The encryption key is all zeros here and
    /// therefore only fit for tests; `from_env` insists on a real one.
    pub fn local_defaults() -> Self {
        let zero = BASE64.encode([0u8; 32]);
        Self::from_lookup(|name| (name == "HOOKRELAY_ENCRYPTION_KEY").then(|| zero.clone()))
            .expect("the declared defaults are valid")
    }

    /// The address rules deliveries follow.
    pub fn target_policy(&self) -> TargetPolicy {
        TargetPolicy {
            allow_all: self.security.allow_private_targets,
            deny: self.security.deny_cidrs.clone(),
            allow: self.security.allow_cidrs.clone(),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests); empty
    /// values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let parsed =
            parse(Self::command(), vec!["hookrelay".into()], lookup).map_err(|e| explain(&e))?;
        Self::from_matches(&parsed.matches)
    }

    /// The settings parsed by a command that declares them (e.g. the CLI's).
    pub fn from_matches(matches: &clap::ArgMatches) -> Result<Self, ConfigError> {
        let config = Self::from_arg_matches(matches).map_err(|e| explain(&e))?;
        config.security.checked_master_keys()?;
        if config
            .retention
            .bodies
            .is_some_and(|b| b > config.retention.history)
        {
            let history = env_name("history");
            let why = format!("must not be longer than {history}");
            return Err(ConfigError::setting("bodies", why));
        }
        if config.broker.client_cert.is_some() != config.broker.client_key.is_some() {
            let key = env_name("client_key");
            let why = format!("set it together with {key}, or neither");
            return Err(ConfigError::setting("client_cert", why));
        }
        if !(1..=100).contains(&config.retry.schedule.len()) {
            return Err(ConfigError::setting("schedule", "list 1 to 100 durations"));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
