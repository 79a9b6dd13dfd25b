//! Reading the declared settings: flags first, then each setting's `HOOKRELAY_*`
//! variable, trimmed (empty counts as unset); errors that name the setting; and
//! the description `hookrelay config` prints, with where each value came from.

use clap::Command;

use super::{Config, ConfigError};

/// A command line parsed with the settings in effect.
pub struct Parsed {
    pub matches: clap::ArgMatches,
    /// The settings whose value came from the environment.
    from_env: std::collections::HashSet<String>,
}

/// Parses `args` (the program name first) with `cmd`, which declares the settings
/// (`Config::command()`, or a CLI that `Config::augment_args` extended). Each setting
/// not given as a flag is read through `lookup` by its `HOOKRELAY_*` name, trimmed,
/// an empty value counting as unset: the one way settings are read from the
/// environment, by the binary and by tests alike.
pub fn parse(
    cmd: Command,
    args: Vec<std::ffi::OsString>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Parsed, clap::Error> {
    let given = |long: &str| {
        args.iter().skip(1).any(|a| {
            let a = a.to_string_lossy();
            a.strip_prefix("--")
                .and_then(|a| a.strip_prefix(long))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        })
    };
    let mut from_env = std::collections::HashSet::new();
    let mut argv: Vec<std::ffi::OsString> = args.iter().take(1).cloned().collect();
    for arg in cmd.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let env = env.to_string_lossy().into_owned();
        if given(long) {
            continue;
        }
        if let Some(v) = lookup(&env)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            argv.push(format!("--{long}={v}").into());
            from_env.insert(env);
        }
    }
    argv.extend(args.iter().skip(1).cloned());
    let matches = cmd
        .mut_args(|a| a.env(None::<&str>))
        .try_get_matches_from(argv)?;
    Ok(Parsed { matches, from_env })
}

/// A parse error from clap, as the setting it is about and why.
pub fn explain(e: &clap::Error) -> ConfigError {
    use clap::error::{ContextKind, ContextValue};
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let long = arg
        .as_deref()
        .and_then(|a| a.strip_prefix("--"))
        .map(|a| a.split([' ', '=', '<']).next().unwrap_or(a).to_string());
    let env = long.as_deref().and_then(|long| {
        Config::command()
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
    });
    let reason = match e.kind() {
        clap::error::ErrorKind::MissingRequiredArgument => "is required".to_string(),
        _ => std::error::Error::source(e).map_or_else(
            || {
                e.to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string()
            },
            |s| s.to_string(),
        ),
    };
    ConfigError {
        name: env.or(arg).unwrap_or_else(|| "a setting".into()),
        reason,
    }
}

/// Every setting with the value in effect (secrets masked) and where it came
/// from, one per line: what `hookrelay config` prints.
pub fn describe(parsed: &Parsed) -> String {
    let matches = &parsed.matches;
    let mut out = String::new();
    let mut heading = None;
    for arg in Config::command().get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let id = arg.get_id().as_str();
        if arg.get_help_heading() != heading {
            heading = arg.get_help_heading();
            out.push_str(&format!("\n# {}\n", heading.unwrap_or("Settings")));
        }
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = if raw.is_empty() {
            "(unset)".to_string()
        } else if arg.is_hide_env_values_set() {
            "***".to_string()
        } else {
            raw.join(",")
        };
        let env = env.to_string_lossy();
        let source = match matches.value_source(id) {
            _ if parsed.from_env.contains(env.as_ref()) => "environment",
            Some(clap::parser::ValueSource::CommandLine) => "command line",
            Some(clap::parser::ValueSource::DefaultValue) => "default",
            _ => "unset",
        };
        out.push_str(&format!("{env}={value}  # {source}\n"));
    }
    out.trim_start().to_string()
}
