//! Runtime configuration. Every setting is declared once, below: its
//! `HOOKRELAY_*` name, type, default, range and help, grouped by concern. They are
//! read from the environment (or `--flags`), checked once at start with errors
//! that name the setting; `hookrelay --help` lists them all with their defaults and
//! `hookrelay config` prints the values in effect (secrets masked).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::builder::{BoolishValueParser, RangedU64ValueParser};
use clap::{ArgAction, Args, Command, FromArgMatches};

use crate::retry::RetryPolicy;
use crate::target::{TargetPolicy, parse_cidrs};

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
    pub name: String,
    pub reason: String,
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

#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// What to log: a tracing filter, e.g. info or hookrelay_dispatcher=debug,info.
    #[arg(long = "log", env = "HOOKRELAY_LOG", default_value = crate::telemetry::DEFAULT_FILTER)]
    pub filter: String,
    /// text (for people) or json (one object per line, for log pipelines).
    #[arg(
        long = "log-format",
        env = "HOOKRELAY_LOG_FORMAT",
        default_value = "text",
        value_enum
    )]
    pub format: LogFormat,
    /// Export spans over OTLP/HTTP (JSON) to this collector, e.g.
    /// http://127.0.0.1:4318 (sent to {url}/v1/traces); unset: no export.
    #[arg(long = "otlp-endpoint", env = "HOOKRELAY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL.
    #[arg(long = "database-url", env = "HOOKRELAY_DATABASE_URL", hide_env_values = true,
          default_value = "postgres://hookrelay:hookrelay@127.0.0.1:5432/hookrelay",
          value_parser = postgres_url)]
    pub url: Sensitive<String>,
    /// Connections each process's pool may open.
    #[arg(long = "database-max-connections", env = "HOOKRELAY_DATABASE_MAX_CONNECTIONS",
          default_value = "16", value_parser = RangedU64ValueParser::<u32>::new().range(1..=1000))]
    pub max_connections: u32,
    /// PEM file of the CA(s) that sign the database server's certificate, checked
    /// with sslmode=verify-ca or verify-full in the URL (unset: the system's roots).
    #[arg(long = "database-ca-file", env = "HOOKRELAY_DATABASE_CA_FILE", value_parser = pem_file)]
    pub ca_file: Option<PemFile>,
}

#[derive(Debug, Clone, Args)]
pub struct BrokerSettings {
    /// RabbitMQ URL (amqps:// for TLS), or a comma-separated list of a cluster's
    /// nodes: each process connects to one and fails over to the next.
    #[arg(long = "amqp-url", env = "HOOKRELAY_AMQP_URL", hide_env_values = true,
          default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", value_parser = amqp_url)]
    pub amqp_url: Sensitive<String>,
    /// PEM file of the CA(s) that sign the broker's certificate, for amqps://
    /// (added to the system's roots).
    #[arg(long = "amqp-ca-file", env = "HOOKRELAY_AMQP_CA_FILE", value_parser = pem_file)]
    pub amqp_ca_file: Option<PemFile>,
    /// PEM certificate (chain) hookrelay presents to a broker that asks for one;
    /// needs HOOKRELAY_AMQP_CLIENT_KEY.
    #[arg(long = "amqp-client-cert", env = "HOOKRELAY_AMQP_CLIENT_CERT", value_parser = pem_file)]
    pub client_cert: Option<PemFile>,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1) of HOOKRELAY_AMQP_CLIENT_CERT.
    #[arg(long = "amqp-client-key", env = "HOOKRELAY_AMQP_CLIENT_KEY", value_parser = pem_file)]
    pub client_key: Option<PemFile>,
    /// Replicas of each quorum queue when it is first declared
    /// (x-quorum-initial-group-size); unset: the broker's default (every node,
    /// in a cluster of up to a few).
    #[arg(long = "quorum-replicas", env = "HOOKRELAY_QUORUM_REPLICAS",
          value_parser = RangedU64ValueParser::<u8>::new().range(1..=15))]
    pub quorum_replicas: Option<u8>,
    /// Names every queue, so several installations (or tests) can share one broker.
    #[arg(long = "queue-prefix", env = "HOOKRELAY_QUEUE_PREFIX", default_value = "hookrelay",
          value_parser = queue_prefix)]
    pub queue_prefix: String,
    /// Delivery queues; an endpoint always maps to the same one.
    #[arg(long, env = "HOOKRELAY_SHARDS", default_value = "16",
          value_parser = RangedU64ValueParser::<u16>::new().range(1..=1024))]
    pub shards: u16,
    /// The `x-delivery-limit` of the ingest and shard queues: a message handed back
    /// this often (its consumer died with it each time) is dead-lettered. Applies
    /// to queues when they are first declared.
    #[arg(long = "queue-delivery-limit", env = "HOOKRELAY_QUEUE_DELIVERY_LIMIT", default_value = "20",
          value_parser = RangedU64ValueParser::<u32>::new().range(1..=1_000_000))]
    pub queue_delivery_limit: u32,
    /// Unacked ingest messages the router holds.
    #[arg(long = "ingest-prefetch", env = "HOOKRELAY_INGEST_PREFETCH", default_value = "64",
          value_parser = RangedU64ValueParser::<u16>::new().range(1..=65535))]
    pub ingest_prefetch: u16,
    /// Unacked delivery messages per shard consumer.
    #[arg(long = "delivery-prefetch", env = "HOOKRELAY_DELIVERY_PREFETCH", default_value = "32",
          value_parser = RangedU64ValueParser::<u16>::new().range(1..=65535))]
    pub delivery_prefetch: u16,
}

#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address the API (and the console) listens on.
    #[arg(long, env = "HOOKRELAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest accepted event (and request) body, in bytes.
    #[arg(long = "max-payload-bytes", env = "HOOKRELAY_MAX_PAYLOAD_BYTES", default_value = "1048576",
          value_parser = RangedU64ValueParser::<usize>::new().range(1024..=64 * 1024 * 1024))]
    pub max_payload_bytes: usize,
    /// Event bytes a gateway holds while their broker confirm is awaited; further
    /// requests wait for room.
    #[arg(long = "ingest-buffer-bytes", env = "HOOKRELAY_INGEST_BUFFER_BYTES", default_value = "67108864",
          value_parser = RangedU64ValueParser::<usize>::new().range(MIB..GIB4))]
    pub ingest_buffer_bytes: usize,
    /// Where users reach this installation, an http(s) origin such as
    /// https://hooks.example.com. Console links start with it, and with https the
    /// console's cookie is Secure. Unset: links use the request's host over http.
    #[arg(long = "public-url", env = "HOOKRELAY_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,
    /// Also serve /metrics on this address: for dispatchers, which have no API
    /// port (gateways serve /metrics on HOOKRELAY_LISTEN anyway).
    #[arg(long = "metrics-listen", env = "HOOKRELAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed: a
    /// request from one of them is taken to come from the nearest forwarded
    /// address that is not itself a trusted proxy. Empty: the TCP peer.
    #[arg(long = "trusted-proxies", env = "HOOKRELAY_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a client may take to send a request's headers, from its first
    /// byte (or from the connection's opening); then the connection is closed.
    #[arg(long = "http-header-timeout", env = "HOOKRELAY_HTTP_HEADER_TIMEOUT", default_value = "10s",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(300)))]
    pub header_timeout: Duration,
    /// A kept-alive connection with no request open is closed after this long
    /// (longer than a load balancer's own idle timeout, so it never reuses a
    /// connection being closed).
    #[arg(long = "http-idle-timeout", env = "HOOKRELAY_HTTP_IDLE_TIMEOUT", default_value = "75s",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(3600)))]
    pub idle_timeout: Duration,
    /// How long reading a request's body may take; past it the request fails.
    #[arg(long = "http-body-timeout", env = "HOOKRELAY_HTTP_BODY_TIMEOUT", default_value = "30s",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(600)))]
    pub body_timeout: Duration,
    /// Open connections at most; further ones wait in the listen backlog until
    /// one closes. Keep it under the process's open-file limit.
    #[arg(id = "http_max_connections", long = "http-max-connections", env = "HOOKRELAY_HTTP_MAX_CONNECTIONS", default_value = "4096",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,
    /// Request body bytes the process reads and handles at once, across every
    /// connection; a request whose body would pass it is answered 503 with
    /// retry-after (a body of unknown length counts as the largest allowed).
    #[arg(long = "http-body-budget-bytes", env = "HOOKRELAY_HTTP_BODY_BUDGET_BYTES", default_value = "268435456",
          value_parser = RangedU64ValueParser::<usize>::new().range(MIB..GIB4))]
    pub body_budget_bytes: usize,
    /// Concurrent streams one HTTP/2 connection may open.
    #[arg(long = "http2-max-streams", env = "HOOKRELAY_HTTP2_MAX_STREAMS", default_value = "100",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub http2_max_streams: u32,
    /// Largest header list an HTTP/2 request may send, in bytes.
    #[arg(long = "http2-max-header-bytes", env = "HOOKRELAY_HTTP2_MAX_HEADER_BYTES", default_value = "16384",
          value_parser = clap::value_parser!(u32).range(1024..=1_048_576))]
    pub http2_max_header_bytes: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ConsoleSettings {
    /// Folder of the console's optional wasm build (console.js, console_bg.wasm).
    #[arg(
        long = "console-pkg",
        env = "HOOKRELAY_CONSOLE_PKG",
        default_value = "target/site/pkg"
    )]
    pub pkg: PathBuf,
    /// Folder of the API explorer's script (redoc.standalone.js), served at /docs.
    #[arg(
        long = "docs-pkg",
        env = "HOOKRELAY_DOCS_PKG",
        default_value = "target/site/docs"
    )]
    pub docs: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct SecuritySettings {
    /// The operator's token (at least 16 characters); without it the admin API
    /// and the operator console refuse every call.
    #[arg(long = "admin-token", env = "HOOKRELAY_ADMIN_TOKEN", hide_env_values = true,
          value_parser = admin_token)]
    pub admin_token: Option<Sensitive<String>>,
    /// Base64 of 32 random bytes (openssl rand -base64 32), the master key (id
    /// `default`): encrypts endpoint secrets at rest and signs console links and
    /// sessions. This or HOOKRELAY_ENCRYPTION_KEYS is required.
    #[arg(long = "encryption-key", env = "HOOKRELAY_ENCRYPTION_KEY", hide_env_values = true,
          value_parser = encryption_key)]
    pub encryption_key: Option<Sensitive<[u8; 32]>>,
    /// Master keys with ids, id:base64 separated by commas, e.g.
    /// k2:BASE64,k1:BASE64: the first encrypts and signs, every one decrypts and
    /// verifies what it made (to rotate: put the new key first, run
    /// `hookrelay keys rotate`, then remove the old one). HOOKRELAY_ENCRYPTION_KEY,
    /// when also set, is added last as id `default`.
    #[arg(long = "encryption-keys", env = "HOOKRELAY_ENCRYPTION_KEYS", hide_env_values = true,
          value_delimiter = ',', value_parser = key_entry)]
    pub encryption_keys: Vec<Sensitive<(String, [u8; 32])>>,
    /// Permit loopback and private endpoint addresses (tests, private networks).
    #[arg(long = "allow-private-targets", env = "HOOKRELAY_ALLOW_PRIVATE_TARGETS",
          default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub allow_private_targets: bool,
    /// Ranges endpoints may not resolve to (replaces the default non-public list).
    #[arg(long = "deny-cidrs", env = "HOOKRELAY_DENY_CIDRS", value_delimiter = ',',
          default_values_t = TargetPolicy::default().deny, value_parser = cidr)]
    pub deny_cidrs: Vec<ipnet::IpNet>,
    /// Exceptions to the deny list.
    #[arg(long = "allow-cidrs", env = "HOOKRELAY_ALLOW_CIDRS", value_delimiter = ',', value_parser = cidr)]
    pub allow_cidrs: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Args)]
pub struct QuotaSettings {
    /// Events per second one tenant may ingest through one gateway (bursts of up to
    /// a second's worth); 0: no limit. A tenant's own ingest_rate replaces it.
    #[arg(long = "tenant-ingest-rate", env = "HOOKRELAY_TENANT_INGEST_RATE", default_value = "0",
          value_parser = RangedU64ValueParser::<u32>::new().range(0..=10_000_000))]
    pub ingest_rate: u32,
    /// Events per second a tenant may send through one gateway in the priority
    /// ingest lane while other tenants send too; above it and above its fair share
    /// of the gateway's events, its excess takes the bulk lane. 0: one lane.
    #[arg(long = "tenant-priority-rate", env = "HOOKRELAY_TENANT_PRIORITY_RATE", default_value = "100",
          value_parser = RangedU64ValueParser::<u32>::new().range(0..=10_000_000))]
    pub priority_rate: u32,
    /// Endpoints one tenant may have; a tenant's own max_endpoints replaces it.
    #[arg(long = "tenant-max-endpoints", env = "HOOKRELAY_TENANT_MAX_ENDPOINTS", default_value = "1000",
          value_parser = RangedU64ValueParser::<u32>::new().range(0..=1_000_000))]
    pub max_endpoints: u32,
    /// Failed authentications one client address may make per minute; further
    /// attempts are refused with 429 until the minute has passed.
    #[arg(long = "auth-failures-per-minute", env = "HOOKRELAY_AUTH_FAILURES_PER_MINUTE",
          default_value = "60", value_parser = RangedU64ValueParser::<u32>::new().range(1..=1_000_000))]
    pub auth_failures_per_minute: u32,
}

#[derive(Debug, Clone, Args)]
pub struct DeliverySettings {
    /// Per-request timeout towards endpoints that set none.
    #[arg(long = "delivery-timeout", env = "HOOKRELAY_DELIVERY_TIMEOUT", default_value = "15s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(300)))]
    pub timeout: Duration,
    /// The largest timeout_ms an endpoint may ask for.
    #[arg(long = "max-endpoint-timeout", env = "HOOKRELAY_MAX_ENDPOINT_TIMEOUT", default_value = "60s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(600)))]
    pub max_endpoint_timeout: Duration,
    /// Concurrent outgoing requests per dispatcher.
    #[arg(long = "max-in-flight", env = "HOOKRELAY_MAX_IN_FLIGHT", default_value = "1024",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_in_flight: usize,
    /// Slow requests (open over a second) an endpoint without its own max_in_flight
    /// may have at once; further deliveries to it are parked, so one slow endpoint
    /// cannot take every request slot. Fast endpoints are never held back by it.
    #[arg(long = "endpoint-max-slow-requests", env = "HOOKRELAY_ENDPOINT_MAX_SLOW_REQUESTS",
          default_value = "32", value_parser = RangedU64ValueParser::<u32>::new().range(1..=100_000))]
    pub endpoint_max_slow_requests: u32,
    /// The share (0-1] of the request slots one endpoint may hold.
    #[arg(long = "endpoint-slot-share", env = "HOOKRELAY_ENDPOINT_SLOT_SHARE", default_value = "0.25",
          value_parser = fraction)]
    pub endpoint_slot_share: f64,
    /// The share (0-1] all of one tenant's endpoints may hold together.
    #[arg(long = "tenant-slot-share", env = "HOOKRELAY_TENANT_SLOT_SHARE", default_value = "0.5",
          value_parser = fraction)]
    pub tenant_slot_share: f64,
    /// A routed delivery nobody has finished is sent again by the scheduler this
    /// long after routing (its message may have been lost).
    #[arg(long = "unsent-after", env = "HOOKRELAY_UNSENT_AFTER", default_value = "2m",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(86_400)))]
    pub unsent_after: Duration,
    /// An endpoint whose attempts all failed for this long is disabled (re-enabling
    /// is one PATCH).
    #[arg(long = "disable-failing-after", env = "HOOKRELAY_DISABLE_FAILING_AFTER", default_value = "5days",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(365 * 86_400)))]
    pub disable_failing_after: Duration,
    /// Payload bytes a dispatcher holds loaded at once; further messages wait
    /// before loading theirs.
    #[arg(long = "payload-budget-bytes", env = "HOOKRELAY_PAYLOAD_BUDGET_BYTES", default_value = "67108864",
          value_parser = RangedU64ValueParser::<usize>::new().range(MIB..GIB4))]
    pub payload_budget_bytes: usize,
}

#[derive(Debug, Clone, Args)]
pub struct RetrySettings {
    /// Delay before each retry (the last repeats); its length sets the attempts
    /// unless HOOKRELAY_MAX_ATTEMPTS does.
    #[arg(long = "retry-schedule", env = "HOOKRELAY_RETRY_SCHEDULE", value_delimiter = ',',
          default_value = "5s,30s,2m,10m,30m,1h,2h,4h,8h,16h,24h,24h",
          value_parser = duration_in(Duration::from_millis(1), Duration::from_secs(30 * 86_400)))]
    pub schedule: Vec<Duration>,
    /// Attempts in all, the first included [default: the schedule's length + 1].
    #[arg(long = "max-attempts", env = "HOOKRELAY_MAX_ATTEMPTS",
          value_parser = RangedU64ValueParser::<u32>::new().range(1..=1000))]
    pub max_attempts: Option<u32>,
    /// No attempt is scheduled later than this after the event was routed.
    #[arg(long = "max-age", env = "HOOKRELAY_MAX_AGE", default_value = "3days",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(90 * 86_400)))]
    pub max_age: Duration,
    /// Response statuses that end a delivery at once (410 always disables the endpoint).
    #[arg(long = "non-retryable-statuses", env = "HOOKRELAY_NON_RETRYABLE_STATUSES",
          value_delimiter = ',', value_parser = RangedU64ValueParser::<u16>::new().range(400..=599))]
    pub non_retryable: Vec<u16>,
}

// Circuit breaker thresholds, per endpoint (a doc comment here would become the
// command's description).
#[derive(Debug, Clone, PartialEq, Args)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    #[arg(long = "breaker-failures", env = "HOOKRELAY_BREAKER_FAILURES", default_value = "10",
          value_parser = RangedU64ValueParser::<u32>::new().range(1..=10_000))]
    pub consecutive_failures: u32,
    /// Opens when more than this fraction of requests failed over a minute (of at
    /// least 20 requests).
    #[arg(long = "breaker-failure-rate", env = "HOOKRELAY_BREAKER_FAILURE_RATE", default_value = "0.5",
          value_parser = fraction)]
    pub failure_rate: f64,
    #[arg(skip = 20u32)]
    pub min_requests: u32,
    #[arg(skip = Duration::from_secs(60))]
    pub window: Duration,
    /// First open period, doubling on each reopening up to HOOKRELAY_BREAKER_MAX_OPEN.
    #[arg(long = "breaker-open", env = "HOOKRELAY_BREAKER_OPEN", default_value = "30s",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(86_400)))]
    pub open_for: Duration,
    /// Longest open period.
    #[arg(long = "breaker-max-open", env = "HOOKRELAY_BREAKER_MAX_OPEN", default_value = "10m",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(7 * 86_400)))]
    pub max_open: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct DispatcherSettings {
    /// How long in-flight work may take to finish on shutdown.
    #[arg(long = "shutdown-grace", env = "HOOKRELAY_SHUTDOWN_GRACE", default_value = "20s",
          value_parser = duration_in(Duration::ZERO, Duration::from_secs(3600)))]
    pub shutdown_grace: Duration,
    /// How often a dispatcher renews and rebalances its shard leases; a lease lasts
    /// five heartbeats.
    #[arg(long = "shard-heartbeat", env = "HOOKRELAY_SHARD_HEARTBEAT", default_value = "2s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(60)))]
    pub shard_heartbeat: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct RetentionSettings {
    /// How long events, their deliveries and every attempt are kept, counted
    /// from the day they were made; whole days are dropped after it.
    #[arg(long = "retention", env = "HOOKRELAY_RETENTION", default_value = "30days",
          value_parser = duration_in(Duration::from_secs(86_400), Duration::from_secs(3650 * 86_400)))]
    pub history: Duration,
    /// Optionally shorter: after this, attempts keep their status and timing but
    /// lose response bodies and headers and request headers. Unset: kept as long
    /// as the history.
    #[arg(long = "retention-bodies", env = "HOOKRELAY_RETENTION_BODIES",
          value_parser = duration_in(Duration::from_secs(86_400), Duration::from_secs(3650 * 86_400)))]
    pub bodies: Option<Duration>,
}

const MIB: u64 = 1024 * 1024;
const GIB4: u64 = 4 * 1024 * MIB;

impl Default for BreakerSettings {
    fn default() -> Self {
        Self::from_arg_matches(&defaults_command().get_matches_from(["hookrelay"]))
            .expect("the declared defaults parse")
    }
}

/// The declared breaker settings alone, without environment.
fn defaults_command() -> Command {
    BreakerSettings::augment_args(Command::new("hookrelay")).mut_args(|a| a.env(None::<&str>))
}

impl RetrySettings {
    /// The retry policy these settings make.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            schedule: self.schedule.clone(),
            max_attempts: self.max_attempts.unwrap_or(
                u32::try_from(self.schedule.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(1),
            ),
            max_age: self.max_age,
            non_retryable: self.non_retryable.clone(),
            ..RetryPolicy::default()
        }
    }
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

    /// The queues of this installation, as configured.
    pub fn topology(&self) -> crate::queue::Topology {
        crate::queue::Topology::new(self.broker.queue_prefix.clone(), self.broker.shards)
            .with_delivery_limit(self.broker.queue_delivery_limit)
            .with_replicas(self.broker.quorum_replicas)
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
            return Err(ConfigError {
                name: "HOOKRELAY_RETENTION_BODIES".into(),
                reason: "must not be longer than HOOKRELAY_RETENTION".into(),
            });
        }
        if config.broker.client_cert.is_some() != config.broker.client_key.is_some() {
            return Err(ConfigError {
                name: "HOOKRELAY_AMQP_CLIENT_CERT".into(),
                reason: "set it together with HOOKRELAY_AMQP_CLIENT_KEY, or neither".into(),
            });
        }
        if !(1..=100).contains(&config.retry.schedule.len()) {
            return Err(ConfigError {
                name: "HOOKRELAY_RETRY_SCHEDULE".into(),
                reason: "list 1 to 100 durations".into(),
            });
        }
        Ok(config)
    }
}

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

fn postgres_url(v: &str) -> Result<Sensitive<String>, String> {
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(Sensitive::new(v.to_string()))
    } else {
        Err("must be a postgres:// URL".into())
    }
}

fn amqp_url(v: &str) -> Result<Sensitive<String>, String> {
    let nodes: Vec<&str> = v.split(',').map(str::trim).collect();
    for node in &nodes {
        if !(node.starts_with("amqp://") || node.starts_with("amqps://")) {
            return Err(
                "must be an amqp:// or amqps:// URL, or a comma-separated list of them".into(),
            );
        }
        if let Err(e) = node.parse::<lapin::uri::AMQPUri>() {
            return Err(format!("a node's URL does not parse: {e}"));
        }
    }
    Ok(Sensitive::new(nodes.join(",")))
}

/// A PEM file, read and checked when the settings are: a missing or garbled file
/// stops the process at start rather than at its first connection.
#[derive(Clone)]
pub struct PemFile {
    path: PathBuf,
    pem: std::sync::Arc<[u8]>,
}

impl PemFile {
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }
}

impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PemFile({})", self.path.display())
    }
}

fn pem_file(v: &str) -> Result<PemFile, String> {
    let path = PathBuf::from(v);
    let pem = std::fs::read(&path).map_err(|e| format!("cannot read {v}: {e}"))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!("{v} holds no PEM block (-----BEGIN ...)"));
    }
    Ok(PemFile {
        path,
        pem: pem.into(),
    })
}

fn queue_prefix(v: &str) -> Result<String, String> {
    let ok = v.len() <= 64
        && v.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
    if ok {
        Ok(v.to_string())
    } else {
        Err("use at most 64 letters, digits, '-', '_' or '.'".into())
    }
}

fn admin_token(v: &str) -> Result<Sensitive<String>, String> {
    if v.len() >= 16 {
        Ok(Sensitive::new(v.to_string()))
    } else {
        Err("must be at least 16 characters".into())
    }
}

fn public_url(v: &str) -> Result<String, String> {
    let url = url::Url::parse(v).map_err(|e| e.to_string())?;
    let origin_only = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if origin_only {
        Ok(url.origin().ascii_serialization())
    } else {
        Err("must be an http or https origin such as https://hooks.example.com (no path)".into())
    }
}

fn key_entry(v: &str) -> Result<Sensitive<(String, [u8; 32])>, String> {
    let (id, key) = v
        .trim()
        .split_once(':')
        .ok_or_else(|| "each key is id:base64, e.g. k2:BASE64".to_string())?;
    if !crate::crypto::valid_key_id(id) {
        return Err(format!(
            "key id {id:?} must be 1 to {} of A-Z a-z 0-9 _ -",
            crate::crypto::MAX_KEY_ID_LEN
        ));
    }
    Ok(Sensitive::new((
        id.to_string(),
        *encryption_key(key)?.expose(),
    )))
}

impl SecuritySettings {
    /// The master keys in effect, the current one first.
    pub fn master_keys(&self) -> crate::crypto::MasterKeys {
        self.checked_master_keys()
            .expect("checked when the settings were read")
    }

    fn checked_master_keys(&self) -> Result<crate::crypto::MasterKeys, ConfigError> {
        let invalid = |reason: String| ConfigError {
            name: "HOOKRELAY_ENCRYPTION_KEYS".into(),
            reason,
        };
        let mut keys: Vec<(String, [u8; 32])> = self
            .encryption_keys
            .iter()
            .map(|k| k.expose().clone())
            .collect();
        for (i, (id, _)) in keys.iter().enumerate() {
            if keys[..i].iter().any(|(other, _)| other == id) {
                return Err(invalid(format!("key id {id:?} appears twice")));
            }
        }
        if let Some(key) = &self.encryption_key {
            let id = crate::crypto::DEFAULT_KEY_ID;
            match keys.iter().find(|(other, _)| other == id) {
                Some((_, same)) if same == key.expose() => {}
                Some(_) => {
                    return Err(invalid(format!(
                        "key id {id:?} differs from HOOKRELAY_ENCRYPTION_KEY"
                    )));
                }
                None => keys.push((id.to_string(), *key.expose())),
            }
        }
        if keys.is_empty() {
            return Err(ConfigError {
                name: "HOOKRELAY_ENCRYPTION_KEY".into(),
                reason: "is required (or HOOKRELAY_ENCRYPTION_KEYS): base64 of 32 random bytes \
                         (openssl rand -base64 32)"
                    .into(),
            });
        }
        Ok(crate::crypto::MasterKeys::new(keys))
    }
}

fn encryption_key(v: &str) -> Result<Sensitive<[u8; 32]>, String> {
    let bytes = BASE64.decode(v).map_err(|_| "must be base64".to_string())?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "must decode to exactly 32 bytes (openssl rand -base64 32)".to_string())?;
    Ok(Sensitive::new(key))
}

fn cidr(v: &str) -> Result<ipnet::IpNet, String> {
    let mut list = parse_cidrs(v)?;
    match (list.pop(), list.is_empty()) {
        (Some(net), true) => Ok(net),
        _ => Err(format!("{v:?} is not a CIDR range")),
    }
}

fn fraction(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!(
            "expected a fraction above 0 and at most 1, got {v:?}"
        )),
    }
}

/// A parser for durations such as `15s` or `2m` within [`min`, `max`].
fn duration_in(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |v: &str| {
        let d = humantime::parse_duration(v.trim())
            .map_err(|_| format!("expected a duration such as 15s or 2m, got {v:?}"))?;
        if d < min || d > max {
            return Err(format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ));
        }
        Ok(d)
    }
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
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.http.max_payload_bytes, 1024 * 1024);
        assert!(!c.security.allow_private_targets);
        let keys = c.security.master_keys();
        assert_eq!(keys.iter().next(), Some(("default", &[1u8; 32])));
        assert_eq!(c.security.deny_cidrs, TargetPolicy::default().deny);
        assert_eq!(c.retry.policy(), RetryPolicy::default());
        assert_eq!(c.breaker, BreakerSettings::default());
        assert_eq!(
            c.broker.queue_delivery_limit,
            crate::queue::DEFAULT_DELIVERY_LIMIT
        );
        assert_eq!(
            c.delivery.disable_failing_after,
            Duration::from_secs(5 * 86_400)
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let c =
            load(&[("HOOKRELAY_SHARDS", " 4 "), ("HOOKRELAY_PUBLIC_URL", "  ")]).expect("trimmed");
        assert_eq!((c.broker.shards, c.http.public_url), (4, None));
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
            assert_eq!(e.name, name, "{e}");
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
        let p = c.retry.policy();
        assert_eq!(
            p.schedule,
            vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120)
            ]
        );
        assert_eq!(p.max_attempts, 4);
        assert_eq!(p.non_retryable, vec![400, 422]);
        let c = load(&[
            ("HOOKRELAY_RETRY_SCHEDULE", "1s"),
            ("HOOKRELAY_MAX_ATTEMPTS", "9"),
        ])
        .expect("valid");
        assert_eq!(c.retry.policy().max_attempts, 9);
    }

    #[test]
    fn encryption_key_is_required() {
        let e = Config::from_lookup(|_| None).expect_err("missing key");
        assert_eq!(e.name, "HOOKRELAY_ENCRYPTION_KEY");
        assert!(e.reason.contains("openssl rand"), "{e}");
    }

    #[test]
    fn several_master_keys_with_ids_the_first_current() {
        let (k1, k2) = (BASE64.encode([1u8; 32]), BASE64.encode([2u8; 32]));
        let c = Config::from_lookup(|name| {
            (name == "HOOKRELAY_ENCRYPTION_KEYS").then(|| format!("k2:{k2}, k1:{k1}"))
        })
        .expect("valid");
        assert_eq!(
            c.security.master_keys().ids().collect::<Vec<_>>(),
            ["k2", "k1"]
        );
        // The single key joins the ring, last, as `default`.
        let c = Config::from_lookup(|name| match name {
            "HOOKRELAY_ENCRYPTION_KEYS" => Some(format!("k2:{k2}")),
            "HOOKRELAY_ENCRYPTION_KEY" => Some(k1.clone()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(
            c.security.master_keys().ids().collect::<Vec<_>>(),
            ["k2", "default"]
        );
        for bad in [
            format!("k1:{k1},k1:{k2}"),
            k1.to_string(),
            format!("bad id:{k1}"),
            "k1:short".into(),
        ] {
            let e = Config::from_lookup(|name| {
                (name == "HOOKRELAY_ENCRYPTION_KEYS").then(|| bad.clone())
            })
            .expect_err("refused");
            assert_eq!(e.name, "HOOKRELAY_ENCRYPTION_KEYS", "{bad}: {e}");
        }
    }

    #[test]
    fn the_public_url_must_be_an_http_origin() {
        let c = load(&[("HOOKRELAY_PUBLIC_URL", "HTTPS://Hooks.Example.com/")]).expect("valid");
        assert_eq!(
            c.http.public_url.as_deref(),
            Some("https://hooks.example.com")
        );
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

    #[test]
    fn every_setting_is_declared_once_with_help_and_described() {
        let cmd = Config::command();
        let envs: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        let unique: std::collections::HashSet<_> = envs.iter().collect();
        assert_eq!(unique.len(), envs.len());
        assert_eq!(envs.len(), 62, "every HOOKRELAY_* setting is declared here");
        for arg in cmd.get_arguments().filter(|a| a.get_env().is_some()) {
            assert!(arg.get_help().is_some(), "{:?} has no help", arg.get_id());
        }
        let key = BASE64.encode([1u8; 32]);
        let env = |name: &str| match name {
            "HOOKRELAY_ENCRYPTION_KEY" => Some(key.clone()),
            "HOOKRELAY_SHARDS" => Some(" 8 ".into()),
            "HOOKRELAY_LISTEN" => Some("127.0.0.1:9999".into()),
            _ => None,
        };
        let args = [
            "hookrelay",
            "--admin-token=a-very-secret-admin-token",
            "--shards",
            "4",
        ];
        let parsed = parse(Config::command(), args.map(Into::into).to_vec(), env).expect("valid");
        let text = describe(&parsed);
        assert!(
            text.contains("HOOKRELAY_SHARDS=4  # command line"),
            "flags win: {text}"
        );
        assert!(text.contains("HOOKRELAY_ADMIN_TOKEN=***"), "{text}");
        assert!(
            text.contains("HOOKRELAY_LISTEN=127.0.0.1:9999  # environment"),
            "{text}"
        );
        assert!(
            text.contains("HOOKRELAY_ENCRYPTION_KEY=***  # environment"),
            "{text}"
        );
        assert!(
            text.contains("HOOKRELAY_DELIVERY_TIMEOUT=15s  # default"),
            "{text}"
        );
        let c = Config::from_matches(&parsed.matches).expect("valid");
        assert_eq!((c.broker.shards, c.http.listen.port()), (4, 9999));
        assert!(!text.contains("a-very-secret"));
    }
}
