//! The settings' groups, one struct each, in the order `--help` lists them (the
//! order of `Config`'s fields): every setting's `HOOKRELAY_*` name, type,
//! default, range and help.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, RangedU64ValueParser};
use clap::{ArgAction, Args, Command, FromArgMatches};

use super::values::{
    PemFile, Sensitive, admin_token, amqp_url, cidr, duration_in, encryption_key, fraction,
    key_entry, pem_file, postgres_url, proxy_url, public_url, queue_prefix,
};
use crate::retry::RetryPolicy;
use crate::target_policy::TargetPolicy;

/// The log filter when none is configured.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,lapin=warn";

#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// What to log: a tracing filter, e.g. info or hookrelay_dispatcher=debug,info.
    #[arg(long = "log", env = "HOOKRELAY_LOG", default_value = DEFAULT_FILTER)]
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
    /// The share (0-1] of the request slots kept for first attempts: retries may
    /// hold only the rest, so fresh events keep flowing while a retry storm drains.
    #[arg(long = "first-attempt-share", env = "HOOKRELAY_FIRST_ATTEMPT_SHARE", default_value = "0.25",
          value_parser = fraction)]
    pub first_attempt_share: f64,
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
    /// Send every delivery (and OAuth2 token request) through this HTTP CONNECT
    /// proxy, http://[user:password@]host:port, so receivers can allow-list its
    /// addresses. The dispatcher still resolves and checks every target itself and
    /// asks the proxy only for addresses the rules permit.
    #[arg(long = "egress-proxy", env = "HOOKRELAY_EGRESS_PROXY", hide_env_values = true,
          value_parser = proxy_url)]
    pub egress_proxy: Option<Sensitive<String>>,
    /// The id of the tenant whose endpoints receive every tenant's operational
    /// events (hookrelay.endpoint.failing, …), besides the tenant each is about.
    #[arg(long = "operations-tenant", env = "HOOKRELAY_OPERATIONS_TENANT")]
    pub operations_tenant: Option<uuid::Uuid>,
    /// Dead deliveries of one tenant in 15 minutes that raise
    /// hookrelay.dead_letters.growing (once per window); 0: never.
    #[arg(long = "dead-letters-growing", env = "HOOKRELAY_DEAD_LETTERS_GROWING", default_value = "100",
          value_parser = RangedU64ValueParser::<u32>::new().range(0..=10_000_000))]
    pub dead_letters_growing: u32,
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
