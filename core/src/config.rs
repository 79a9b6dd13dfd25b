//! Runtime configuration: defaults for a local machine, overridden by `HOOKRELAY_*`
//! environment variables, validated once at start with errors that name the setting.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::retry::RetryPolicy;
use crate::target::{TargetPolicy, parse_cidrs};

/// Circuit breaker thresholds, per endpoint (`HOOKRELAY_BREAKER_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    pub consecutive_failures: u32,
    /// Opens when more than this fraction failed over `window` (with `min_requests`).
    pub failure_rate: f64,
    pub min_requests: u32,
    pub window: Duration,
    /// First open period (whole seconds, at least 1), doubling up to `max_open`.
    pub open_for: Duration,
    pub max_open: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: 10,
            failure_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
            max_open: Duration::from_secs(600),
        }
    }
}

/// A value that must never reach logs (passwords in URLs, tokens, keys).
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A setting that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `HOOKRELAY_DATABASE_URL`
    pub database_url: Sensitive<String>,
    /// `HOOKRELAY_DATABASE_MAX_CONNECTIONS`
    pub database_max_connections: u32,
    /// `HOOKRELAY_AMQP_URL`
    pub amqp_url: Sensitive<String>,
    /// `HOOKRELAY_QUEUE_PREFIX`: names every queue, so several installations
    /// (or tests) can share one broker.
    pub queue_prefix: String,
    /// `HOOKRELAY_LISTEN`
    pub listen: SocketAddr,
    /// `HOOKRELAY_ADMIN_TOKEN`: without it the admin API refuses every call.
    pub admin_token: Option<Sensitive<String>>,
    /// `HOOKRELAY_PUBLIC_URL`: where users reach this installation (e.g.
    /// `https://hooks.example.com`). Console links start with it, and with `https`
    /// the console's cookie is `Secure`. Unset: links use the request's host over http.
    pub public_url: Option<String>,
    /// `HOOKRELAY_CONSOLE_PKG`: folder of the console's optional wasm build
    /// (`console.js`, `console_bg.wasm`); default `target/site/pkg`.
    pub console_pkg: std::path::PathBuf,
    /// `HOOKRELAY_ENCRYPTION_KEY`: base64 of 32 bytes; encrypts endpoint secrets at rest.
    pub encryption_key: Sensitive<[u8; 32]>,
    /// `HOOKRELAY_SHARDS`: delivery queues; an endpoint always maps to the same one.
    pub shards: u16,
    /// `HOOKRELAY_MAX_PAYLOAD_BYTES`: largest accepted event (and request) body.
    pub max_payload_bytes: usize,
    /// `HOOKRELAY_ALLOW_PRIVATE_TARGETS`: permit loopback/private endpoint addresses.
    pub allow_private_targets: bool,
    /// `HOOKRELAY_DENY_CIDRS` (replaces the default non-public list) and
    /// `HOOKRELAY_ALLOW_CIDRS` (exceptions to it).
    pub deny_cidrs: Vec<ipnet::IpNet>,
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// `HOOKRELAY_DELIVERY_TIMEOUT`: per-request timeout towards endpoints (default).
    pub delivery_timeout: Duration,
    /// `HOOKRELAY_MAX_ENDPOINT_TIMEOUT`: the largest `timeout_ms` an endpoint may ask for.
    pub max_endpoint_timeout: Duration,
    /// `HOOKRELAY_INGEST_PREFETCH`: unacked ingest messages the router holds.
    pub ingest_prefetch: u16,
    /// `HOOKRELAY_DELIVERY_PREFETCH`: unacked delivery messages per shard consumer.
    pub delivery_prefetch: u16,
    /// `HOOKRELAY_MAX_IN_FLIGHT`: concurrent outgoing requests per dispatcher.
    pub max_in_flight: usize,
    /// `HOOKRELAY_ENDPOINT_MAX_SLOW_REQUESTS`: how many slow requests (open for over
    /// a second) an endpoint that sets no `max_in_flight` may have at once; further
    /// deliveries to it are parked, so one slow endpoint cannot take every request
    /// slot of a dispatcher. Fast endpoints are never held back by it.
    pub endpoint_max_slow_requests: u32,
    /// `HOOKRELAY_ENDPOINT_SLOT_SHARE`: the share (0–1] of `HOOKRELAY_MAX_IN_FLIGHT`
    /// one endpoint may hold, whatever its own `max_in_flight`.
    pub endpoint_slot_share: f64,
    /// `HOOKRELAY_TENANT_SLOT_SHARE`: the share (0–1] all of one tenant's endpoints
    /// may hold together.
    pub tenant_slot_share: f64,
    /// `HOOKRELAY_QUEUE_DELIVERY_LIMIT`: the `x-delivery-limit` of the ingest and
    /// shard queues: a message handed back this often (its consumer died with it
    /// each time) is dead-lettered. Applies to queues when they are first declared.
    pub queue_delivery_limit: u32,
    /// `HOOKRELAY_UNSENT_AFTER`: a routed delivery nobody has finished is sent again
    /// by the scheduler this long after routing (its message may have been lost).
    pub unsent_after: Duration,
    /// `HOOKRELAY_INGEST_BUFFER_BYTES`: event bytes a gateway holds while their
    /// broker confirm is awaited; further requests wait for room.
    pub ingest_buffer_bytes: usize,
    /// `HOOKRELAY_PAYLOAD_BUDGET_BYTES`: payload bytes a dispatcher holds loaded at
    /// once; further messages wait before loading theirs.
    pub payload_budget_bytes: usize,
    /// `HOOKRELAY_SHUTDOWN_GRACE`: how long in-flight work may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// `HOOKRELAY_SHARD_HEARTBEAT`: how often a dispatcher renews and rebalances its
    /// shard leases; a lease lasts five heartbeats.
    pub shard_heartbeat: Duration,
    /// `HOOKRELAY_RETRY_SCHEDULE` (e.g. `5s,30s,2m`; its length sets the retries),
    /// `HOOKRELAY_MAX_ATTEMPTS`, `HOOKRELAY_MAX_AGE`, `HOOKRELAY_NON_RETRYABLE_STATUSES`.
    pub retry: RetryPolicy,
    /// `HOOKRELAY_BREAKER_FAILURES`, `HOOKRELAY_BREAKER_FAILURE_RATE`,
    /// `HOOKRELAY_BREAKER_OPEN`, `HOOKRELAY_BREAKER_MAX_OPEN`.
    pub breaker: BreakerSettings,
    /// `HOOKRELAY_DISABLE_FAILING_AFTER`: an endpoint whose attempts all failed for this
    /// long is disabled (re-enabling is one `PATCH`).
    pub disable_failing_after: Duration,
}

impl Config {
    /// Defaults for a developer machine. The encryption key is all zeros here and
    /// therefore only fit for tests; `from_env` insists on a real one.
    pub fn local_defaults() -> Self {
        Self {
            database_url: Sensitive::new(
                "postgres://hookrelay:hookrelay@127.0.0.1:5432/hookrelay".into(),
            ),
            database_max_connections: 16,
            amqp_url: Sensitive::new("amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            queue_prefix: "hookrelay".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            public_url: None,
            console_pkg: "target/site/pkg".into(),
            encryption_key: Sensitive::new([0u8; 32]),
            shards: 16,
            max_payload_bytes: 1024 * 1024,
            allow_private_targets: false,
            deny_cidrs: TargetPolicy::default().deny,
            allow_cidrs: Vec::new(),
            delivery_timeout: Duration::from_secs(15),
            max_endpoint_timeout: Duration::from_secs(60),
            ingest_prefetch: 64,
            delivery_prefetch: 32,
            max_in_flight: 1024,
            endpoint_max_slow_requests: 32,
            endpoint_slot_share: 0.25,
            tenant_slot_share: 0.5,
            queue_delivery_limit: crate::queue::DEFAULT_DELIVERY_LIMIT,
            unsent_after: Duration::from_secs(120),
            ingest_buffer_bytes: 64 * 1024 * 1024,
            payload_budget_bytes: 64 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(20),
            shard_heartbeat: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            breaker: BreakerSettings::default(),
            disable_failing_after: Duration::from_secs(5 * 86_400),
        }
    }

    /// The queues of this installation, as configured.
    pub fn topology(&self) -> crate::queue::Topology {
        crate::queue::Topology::new(self.queue_prefix.clone(), self.shards)
            .with_delivery_limit(self.queue_delivery_limit)
    }

    /// The address rules deliveries follow.
    pub fn target_policy(&self) -> TargetPolicy {
        TargetPolicy {
            allow_all: self.allow_private_targets,
            deny: self.deny_cidrs.clone(),
            allow: self.allow_cidrs.clone(),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::local_defaults();
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        if let Some(v) = get("HOOKRELAY_DATABASE_URL") {
            require(
                v.starts_with("postgres://") || v.starts_with("postgresql://"),
                "HOOKRELAY_DATABASE_URL",
                "must be a postgres:// URL",
            )?;
            c.database_url = Sensitive::new(v);
        }
        if let Some(v) = get("HOOKRELAY_DATABASE_MAX_CONNECTIONS") {
            c.database_max_connections =
                parse_range("HOOKRELAY_DATABASE_MAX_CONNECTIONS", &v, 1, 1000)?;
        }
        if let Some(v) = get("HOOKRELAY_AMQP_URL") {
            require(
                v.starts_with("amqp://") || v.starts_with("amqps://"),
                "HOOKRELAY_AMQP_URL",
                "must be an amqp:// URL",
            )?;
            c.amqp_url = Sensitive::new(v);
        }
        if let Some(v) = get("HOOKRELAY_QUEUE_PREFIX") {
            let ok = v.len() <= 64
                && v.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
            require(
                ok,
                "HOOKRELAY_QUEUE_PREFIX",
                "use at most 64 letters, digits, '-', '_' or '.'",
            )?;
            c.queue_prefix = v;
        }
        if let Some(v) = get("HOOKRELAY_LISTEN") {
            c.listen = v.parse().map_err(|_| {
                err(
                    "HOOKRELAY_LISTEN",
                    format!("expected host:port such as 127.0.0.1:8080, got {v:?}"),
                )
            })?;
        }
        if let Some(v) = get("HOOKRELAY_ADMIN_TOKEN") {
            require(
                v.len() >= 16,
                "HOOKRELAY_ADMIN_TOKEN",
                "must be at least 16 characters",
            )?;
            c.admin_token = Some(Sensitive::new(v));
        }
        if let Some(v) = get("HOOKRELAY_PUBLIC_URL") {
            let url =
                url::Url::parse(&v).map_err(|e| err("HOOKRELAY_PUBLIC_URL", e.to_string()))?;
            require(
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
                    && url.fragment().is_none()
                    && url.username().is_empty()
                    && url.password().is_none(),
                "HOOKRELAY_PUBLIC_URL",
                "must be an http or https origin such as https://hooks.example.com (no path)",
            )?;
            c.public_url = Some(url.origin().ascii_serialization());
        }
        if let Some(v) = get("HOOKRELAY_CONSOLE_PKG") {
            c.console_pkg = v.into();
        }
        match get("HOOKRELAY_ENCRYPTION_KEY") {
            Some(v) => {
                let bytes = BASE64
                    .decode(&v)
                    .map_err(|_| err("HOOKRELAY_ENCRYPTION_KEY", "must be base64".into()))?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    err(
                        "HOOKRELAY_ENCRYPTION_KEY",
                        "must decode to exactly 32 bytes (openssl rand -base64 32)".into(),
                    )
                })?;
                c.encryption_key = Sensitive::new(key);
            }
            None => {
                return Err(err(
                    "HOOKRELAY_ENCRYPTION_KEY",
                    "is required: base64 of 32 random bytes (openssl rand -base64 32)".into(),
                ));
            }
        }
        if let Some(v) = get("HOOKRELAY_SHARDS") {
            c.shards = parse_range("HOOKRELAY_SHARDS", &v, 1, 1024)?;
        }
        if let Some(v) = get("HOOKRELAY_MAX_PAYLOAD_BYTES") {
            c.max_payload_bytes =
                parse_range("HOOKRELAY_MAX_PAYLOAD_BYTES", &v, 1024, 64 * 1024 * 1024)?;
        }
        if let Some(v) = get("HOOKRELAY_ALLOW_PRIVATE_TARGETS") {
            c.allow_private_targets = match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(err(
                        "HOOKRELAY_ALLOW_PRIVATE_TARGETS",
                        format!("expected true or false, got {v:?}"),
                    ));
                }
            };
        }
        if let Some(v) = get("HOOKRELAY_DENY_CIDRS") {
            c.deny_cidrs = parse_cidrs(&v).map_err(|e| err("HOOKRELAY_DENY_CIDRS", e))?;
        }
        if let Some(v) = get("HOOKRELAY_ALLOW_CIDRS") {
            c.allow_cidrs = parse_cidrs(&v).map_err(|e| err("HOOKRELAY_ALLOW_CIDRS", e))?;
        }
        if let Some(v) = get("HOOKRELAY_DELIVERY_TIMEOUT") {
            c.delivery_timeout = parse_duration(
                "HOOKRELAY_DELIVERY_TIMEOUT",
                &v,
                Duration::from_millis(100),
                Duration::from_secs(300),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_MAX_ENDPOINT_TIMEOUT") {
            c.max_endpoint_timeout = parse_duration(
                "HOOKRELAY_MAX_ENDPOINT_TIMEOUT",
                &v,
                Duration::from_millis(100),
                Duration::from_secs(600),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_INGEST_PREFETCH") {
            c.ingest_prefetch = parse_range("HOOKRELAY_INGEST_PREFETCH", &v, 1, 65535)?;
        }
        if let Some(v) = get("HOOKRELAY_DELIVERY_PREFETCH") {
            c.delivery_prefetch = parse_range("HOOKRELAY_DELIVERY_PREFETCH", &v, 1, 65535)?;
        }
        if let Some(v) = get("HOOKRELAY_MAX_IN_FLIGHT") {
            c.max_in_flight = parse_range("HOOKRELAY_MAX_IN_FLIGHT", &v, 1, 100_000)?;
        }
        if let Some(v) = get("HOOKRELAY_ENDPOINT_MAX_SLOW_REQUESTS") {
            c.endpoint_max_slow_requests =
                parse_range("HOOKRELAY_ENDPOINT_MAX_SLOW_REQUESTS", &v, 1, 100_000)?;
        }
        for (name, field) in [
            ("HOOKRELAY_ENDPOINT_SLOT_SHARE", &mut c.endpoint_slot_share),
            ("HOOKRELAY_TENANT_SLOT_SHARE", &mut c.tenant_slot_share),
        ] {
            if let Some(v) = get(name) {
                *field = match v.parse::<f64>() {
                    Ok(r) if r > 0.0 && r <= 1.0 => r,
                    _ => {
                        return Err(err(
                            name,
                            format!("expected a fraction above 0 and at most 1, got {v:?}"),
                        ));
                    }
                };
            }
        }
        if let Some(v) = get("HOOKRELAY_QUEUE_DELIVERY_LIMIT") {
            c.queue_delivery_limit =
                parse_range("HOOKRELAY_QUEUE_DELIVERY_LIMIT", &v, 1, 1_000_000)?;
        }
        for (name, field) in [
            ("HOOKRELAY_INGEST_BUFFER_BYTES", &mut c.ingest_buffer_bytes),
            (
                "HOOKRELAY_PAYLOAD_BUDGET_BYTES",
                &mut c.payload_budget_bytes,
            ),
        ] {
            if let Some(v) = get(name) {
                *field = parse_range(name, &v, 1024 * 1024, 4 * 1024 * 1024 * 1024 - 1)?;
            }
        }
        if let Some(v) = get("HOOKRELAY_UNSENT_AFTER") {
            c.unsent_after = parse_duration(
                "HOOKRELAY_UNSENT_AFTER",
                &v,
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_SHARD_HEARTBEAT") {
            c.shard_heartbeat = parse_duration(
                "HOOKRELAY_SHARD_HEARTBEAT",
                &v,
                Duration::from_millis(100),
                Duration::from_secs(60),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_SHUTDOWN_GRACE") {
            c.shutdown_grace = parse_duration(
                "HOOKRELAY_SHUTDOWN_GRACE",
                &v,
                Duration::ZERO,
                Duration::from_secs(3600),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_DISABLE_FAILING_AFTER") {
            c.disable_failing_after = parse_duration(
                "HOOKRELAY_DISABLE_FAILING_AFTER",
                &v,
                Duration::from_secs(1),
                Duration::from_secs(365 * 86_400),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_BREAKER_FAILURES") {
            c.breaker.consecutive_failures =
                parse_range("HOOKRELAY_BREAKER_FAILURES", &v, 1, 10_000)?;
        }
        if let Some(v) = get("HOOKRELAY_BREAKER_FAILURE_RATE") {
            c.breaker.failure_rate = match v.parse::<f64>() {
                Ok(r) if r > 0.0 && r <= 1.0 => r,
                _ => {
                    return Err(err(
                        "HOOKRELAY_BREAKER_FAILURE_RATE",
                        format!("expected a fraction above 0 and at most 1, got {v:?}"),
                    ));
                }
            };
        }
        if let Some(v) = get("HOOKRELAY_BREAKER_OPEN") {
            c.breaker.open_for = parse_duration(
                "HOOKRELAY_BREAKER_OPEN",
                &v,
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_BREAKER_MAX_OPEN") {
            c.breaker.max_open = parse_duration(
                "HOOKRELAY_BREAKER_MAX_OPEN",
                &v,
                Duration::from_secs(1),
                Duration::from_secs(7 * 86_400),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_RETRY_SCHEDULE") {
            let schedule = v
                .split(',')
                .map(|d| {
                    parse_duration(
                        "HOOKRELAY_RETRY_SCHEDULE",
                        d.trim(),
                        Duration::from_millis(1),
                        Duration::from_secs(30 * 86_400),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            require(
                !schedule.is_empty() && schedule.len() <= 100,
                "HOOKRELAY_RETRY_SCHEDULE",
                "list 1 to 100 durations",
            )?;
            c.retry.max_attempts = schedule.len() as u32 + 1;
            c.retry.schedule = schedule;
        }
        if let Some(v) = get("HOOKRELAY_MAX_ATTEMPTS") {
            c.retry.max_attempts = parse_range("HOOKRELAY_MAX_ATTEMPTS", &v, 1, 1000)?;
        }
        if let Some(v) = get("HOOKRELAY_MAX_AGE") {
            c.retry.max_age = parse_duration(
                "HOOKRELAY_MAX_AGE",
                &v,
                Duration::from_secs(1),
                Duration::from_secs(90 * 86_400),
            )?;
        }
        if let Some(v) = get("HOOKRELAY_NON_RETRYABLE_STATUSES") {
            c.retry.non_retryable = v
                .split(',')
                .map(|s| parse_range("HOOKRELAY_NON_RETRYABLE_STATUSES", s.trim(), 400u16, 599u16))
                .collect::<Result<_, _>>()?;
        }
        Ok(c)
    }
}

fn err(name: &'static str, reason: String) -> ConfigError {
    ConfigError { name, reason }
}

fn require(ok: bool, name: &'static str, reason: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(err(name, reason.into()))
    }
}

fn parse_range<T>(name: &'static str, v: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(err(
            name,
            format!("expected a whole number from {min} to {max}, got {v:?}"),
        )),
    }
}

fn parse_duration(
    name: &'static str,
    v: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(v).map_err(|_| {
        err(
            name,
            format!("expected a duration such as 15s or 2m, got {v:?}"),
        )
    })?;
    if d < min || d > max {
        return Err(err(
            name,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("HOOKRELAY_ENCRYPTION_KEY".into())
            .or_insert_with(|| BASE64.encode([1u8; 32]));
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = load(&[]).expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.max_payload_bytes, 1024 * 1024);
        assert!(!c.allow_private_targets);
        assert_eq!(c.encryption_key.expose(), &[1u8; 32]);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value) in [
            ("HOOKRELAY_SHARDS", "0"),
            ("HOOKRELAY_SHARDS", "many"),
            ("HOOKRELAY_LISTEN", "localhost"),
            ("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "maybe"),
            ("HOOKRELAY_DELIVERY_TIMEOUT", "forever"),
            ("HOOKRELAY_DATABASE_URL", "mysql://x"),
            ("HOOKRELAY_ENCRYPTION_KEY", "c2hvcnQ="),
            ("HOOKRELAY_ADMIN_TOKEN", "short"),
            ("HOOKRELAY_RETRY_SCHEDULE", "5s,later"),
            ("HOOKRELAY_MAX_ATTEMPTS", "0"),
            ("HOOKRELAY_NON_RETRYABLE_STATUSES", "200"),
            ("HOOKRELAY_ALLOW_CIDRS", "10.0.0.0/99"),
            ("HOOKRELAY_BREAKER_FAILURE_RATE", "1.5"),
            ("HOOKRELAY_BREAKER_OPEN", "10ms"),
        ] {
            let e = load(&[(name, value)]).expect_err(name);
            assert_eq!(e.name, name);
            assert!(e.to_string().contains(name));
        }
    }

    #[test]
    fn the_retry_schedule_sets_the_attempts() {
        let c = load(&[
            ("HOOKRELAY_RETRY_SCHEDULE", "5s, 30s,2m"),
            ("HOOKRELAY_NON_RETRYABLE_STATUSES", "400,422"),
        ])
        .expect("valid");
        assert_eq!(
            c.retry.schedule,
            vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120)
            ]
        );
        assert_eq!(c.retry.max_attempts, 4);
        assert_eq!(c.retry.non_retryable, vec![400, 422]);
        let c = load(&[
            ("HOOKRELAY_RETRY_SCHEDULE", "1s"),
            ("HOOKRELAY_MAX_ATTEMPTS", "9"),
        ])
        .expect("valid");
        assert_eq!(c.retry.max_attempts, 9);
    }

    #[test]
    fn encryption_key_is_required() {
        let e = Config::from_lookup(|_| None).expect_err("missing key");
        assert_eq!(e.name, "HOOKRELAY_ENCRYPTION_KEY");
    }

    #[test]
    fn the_public_url_must_be_an_http_origin() {
        let c = load(&[("HOOKRELAY_PUBLIC_URL", "HTTPS://Hooks.Example.com/")]).expect("valid");
        assert_eq!(c.public_url.as_deref(), Some("https://hooks.example.com"));
        assert!(load(&[("HOOKRELAY_PUBLIC_URL", "https://x.example/console")]).is_err());
        assert!(load(&[("HOOKRELAY_PUBLIC_URL", "https://x.example/?a=1")]).is_err());
        assert!(load(&[("HOOKRELAY_PUBLIC_URL", "ftp://x")]).is_err());
        assert!(load(&[("HOOKRELAY_PUBLIC_URL", "not a url")]).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = load(&[("HOOKRELAY_ADMIN_TOKEN", "a-very-secret-admin-token")]).expect("valid");
        assert!(!format!("{c:?}").contains("a-very-secret"));
    }
}
