//! Postgres store: the pool, migrations, and the queries: a module per table
//! (`tenants`, `endpoints`, `events`, `deliveries`, `attempts`, `jobs`, …) or per
//! work that spans tables (`routing`: the router's write; `claims`: the sender's;
//! `dead`: dead deliveries; `console` and `charts`: the console's reads).
//! Hot-path writes (routing, attempts) are batched into single `UNNEST` statements.

mod api_keys;
mod attempts;
mod audit;
mod charts;
mod claims;
mod console;
mod controls;
mod dead;
mod deliveries;
mod endpoints;
mod events;
mod health;
mod jobs;
mod leases;
mod master_keys;
mod operators;
mod retention;
mod routing;
mod sessions;
mod tenant_deletions;
mod tenants;
#[cfg(feature = "test-support")]
pub mod test_databases;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

pub use crate::validation::Limits;
pub use api_keys::NewKey;
pub use attempts::AttemptRecord;
pub use audit::{AuditEntry, AuditFilter};
pub use charts::{AttemptBin, LATENCY_BOUNDS_MS, LagBin, Scope, SuccessBin};
pub use claims::{Claimed, INLINE_PAYLOAD_BYTES, SendJob};
pub use console::{Backlog, DeliveryFilter, EndpointHealth, EventSummary, FleetNumbers};
pub use controls::{Cancelled, EndpointBacklog, HeldNumbers, ORDERING_SETTLE_SECS};
pub use dead::{DeadFilter, DeadStat, MAX_PICKED};
pub use deliveries::NewDelivery;
pub use endpoints::{
    Controls, EndpointChanges, LoadedOptions, NewEndpoint, RoutingEndpoint, StoredOptions, Updated,
};
pub use events::NewEvent;
pub use health::{Failing, HealthChanges, Subject};
pub use leases::Leases;
pub use master_keys::{KeyRotation, StoredSecrets};
pub use operators::OPERATOR_TOKEN_PREFIX;
pub use retention::{DAYS_AHEAD, Pruned};
pub use sessions::{ConsoleSession, NewSession, OpenSession};
pub use tenant_deletions::{TENANT_DELETED, TenantDeletion};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; holds the constraint's name.
    #[error("conflicts with an existing row ({0})")]
    Conflict(String),
    /// A foreign key refused the write: the row it names does not exist. Holds
    /// the constraint's name.
    #[error("refers to a row that does not exist ({0})")]
    Missing(String),
    /// A page cursor (`after`) that names no row the caller may list.
    #[error("unknown cursor")]
    UnknownCursor,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Maps unique violations to `Conflict`, keeping the constraint name.
    pub(crate) fn from_write(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return Self::Conflict(db.constraint().unwrap_or("unique").to_string());
        }
        if let sqlx::Error::Database(db) = &e
            && db.is_foreign_key_violation()
        {
            return Self::Missing(db.constraint().unwrap_or("foreign key").to_string());
        }
        Self::Database(e)
    }

    /// Whether trying the same call again later can succeed: the database is away,
    /// busy or restarting, or the transaction lost a race (serialization failure,
    /// deadlock). Anything else (a constraint, bad data) fails again the same way,
    /// so it is permanent for the input that caused it.
    /// A row for which no partition exists (SQLSTATE 23514, "no partition of
    /// relation … found for row"): made good by creating its day's partition.
    pub fn is_missing_partition(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(db))
            if db.code().as_deref() == Some("23514") && db.message().starts_with("no partition of relation"))
    }

    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict(_) | Self::Missing(_) | Self::UnknownCursor => false,
            Self::Database(e) => is_transient(e),
        }
    }
}

/// See `StoreError::is_transient`. SQLSTATE classes per the PostgreSQL manual,
/// appendix A: 08 connection exception, 53 insufficient resources (53300 too many
/// connections), 57P0x operator intervention (shutdown, starting up), 58 system
/// error (I/O); 40001 serialization failure, 40P01 deadlock, 55P03 lock not available.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            let code = code.as_ref();
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code.starts_with("58")
                || matches!(code, "40001" | "40P01" | "55P03")
        }),
        _ => false,
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The lists a cursor pages, each a table with a `tenant_id`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Listed {
    Events,
    Endpoints,
    Deliveries,
}

impl Store {
    /// Refuses a cursor that names no row of this tenant's (`UnknownCursor`), so
    /// paging never tells whether an id exists in another tenant.
    pub(crate) async fn check_cursor(
        &self,
        list: Listed,
        tenant_id: uuid::Uuid,
        after: Option<uuid::Uuid>,
    ) -> Result<()> {
        let Some(after) = after else {
            return Ok(());
        };
        let sql = match list {
            Listed::Events => {
                "SELECT EXISTS (SELECT 1 FROM events WHERE id = $1 AND tenant_id = $2)"
            }
            Listed::Endpoints => {
                "SELECT EXISTS (SELECT 1 FROM endpoints WHERE id = $1 AND tenant_id = $2)"
            }
            Listed::Deliveries => {
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1 AND tenant_id = $2)"
            }
        };
        let found: bool = sqlx::query_scalar(sql)
            .bind(after)
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        if found {
            Ok(())
        } else {
            Err(StoreError::UnknownCursor)
        }
    }
}

/// Deliveries a caller publishes itself the moment it makes them pending (replays,
/// test events) fall due this many seconds later anyway: should that publish fail,
/// the scheduler sends them then, and it never races the caller's own message.
pub const PUBLISH_FALLBACK_SECS: f64 = 60.0;

/// The connection options of `HOOKRELAY_DATABASE_URL` with the CA file added. A
/// URL that names no `sslmode` (nor `PGSSLMODE`) reaching this machine connects
/// without TLS: on loopback it protects nothing and costs CPU on both ends
/// (PostgreSQL's default `prefer` would negotiate it); a remote host keeps `prefer`.
pub fn connect_options(
    settings: &crate::config::DatabaseSettings,
) -> std::result::Result<PgConnectOptions, sqlx::Error> {
    url_options(settings.url.expose(), settings.ca_file.as_ref())
}

/// Whether the options reach this machine: a Unix socket or a loopback host.
fn stays_local(options: &PgConnectOptions) -> bool {
    let host = options.get_host();
    options.get_socket().is_some()
        || host.starts_with('/')
        || crate::target_policy::is_loopback_host(host)
}

fn url_options(
    url: &str,
    ca_file: Option<&crate::config::PemFile>,
) -> std::result::Result<PgConnectOptions, sqlx::Error> {
    let mut options: PgConnectOptions = url.parse()?;
    let sslmode_given = std::env::var_os("PGSSLMODE").is_some()
        || url::Url::parse(url).is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "sslmode"));
    if !sslmode_given && stays_local(&options) {
        options = options.ssl_mode(PgSslMode::Disable);
    }
    Ok(match ca_file {
        Some(ca) => options.ssl_root_cert_from_pem(ca.pem().to_vec()),
        None => options,
    })
}

/// Where the database is reached without a guarantee of TLS (`sslmode` below
/// `require`) on a host other than this machine, as `host:port`; `None` when
/// the connection is encrypted or stays on loopback or a Unix socket.
pub fn plaintext_remote(settings: &crate::config::DatabaseSettings) -> Option<String> {
    let options = connect_options(settings).ok()?;
    let unencrypted = matches!(
        options.get_ssl_mode(),
        PgSslMode::Disable | PgSslMode::Allow | PgSslMode::Prefer
    );
    (unencrypted && !stays_local(&options))
        .then(|| format!("{}:{}", options.get_host(), options.get_port()))
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// A lazily connecting pool: creating it never fails because the database is down,
    /// so the gateway can start (and keep ingesting) without Postgres.
    pub fn connect_lazy(url: &str, max_connections: u32) -> std::result::Result<Self, sqlx::Error> {
        Self::connect_lazy_with(url_options(url, None)?, max_connections)
    }

    /// The pool the settings describe: the URL (with its `sslmode`), the CA file
    /// that checks the server's certificate, the pool size.
    pub fn open(
        settings: &crate::config::DatabaseSettings,
    ) -> std::result::Result<Self, sqlx::Error> {
        Self::connect_lazy_with(connect_options(settings)?, settings.max_connections)
    }

    fn connect_lazy_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> std::result::Result<Self, sqlx::Error> {
        // Every statement here is short and touches few rows, but over partitioned
        // tables the planner's estimates can pass the JIT threshold, and compiling
        // a batch statement then costs far more (half a second) than running it.
        //
        // Every statement is planned for its own values: a plan cached for any
        // value (a generic plan) cannot prune the day partitions a batch's ids fall
        // in, and is costed by the tables' sizes when it was made. A connection
        // opened at midnight would otherwise go on scanning the whole day's
        // partition with the plan it made for an empty one (see BENCHMARKS.md).
        let options = options.options([("jit", "off"), ("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// A store over an existing pool (e.g. the one `#[sqlx::test]` hands a test).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations under `migrations/` (a no-op when up to date).
    pub async fn migrate(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("../migrations").run(&self.pool).await
    }

    /// Round-trips a trivial query, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Clamps a requested page size.
pub fn page_limit(requested: Option<u32>) -> i64 {
    i64::from(requested.unwrap_or(50).clamp(1, 250))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Sensitive};

    fn settings(url: &str) -> crate::config::DatabaseSettings {
        let mut c = Config::local_defaults();
        c.database.url = Sensitive::new(url.to_string());
        c.database
    }

    #[test]
    fn tls_is_left_out_on_loopback_unless_asked_for() {
        let mode = |url: &str| connect_options(&settings(url)).expect("url").get_ssl_mode();
        assert!(matches!(
            mode("postgres://u:p@127.0.0.1:5432/db"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u:p@localhost/db"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u:p@127.0.0.1/db?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode("postgres://u:p@db.internal/db"),
            PgSslMode::Prefer
        ));
        assert!(matches!(
            mode("postgres://u:p@db.internal/db?sslmode=verify-full"),
            PgSslMode::VerifyFull
        ));
    }

    #[test]
    fn only_remote_hosts_without_guaranteed_tls_are_flagged() {
        let flagged = |url: &str| plaintext_remote(&settings(url));
        assert_eq!(
            flagged("postgres://u:p@db.internal:6432/db").as_deref(),
            Some("db.internal:6432")
        );
        assert_eq!(
            flagged("postgres://u:p@db.internal/db?sslmode=prefer").as_deref(),
            Some("db.internal:5432")
        );
        assert_eq!(
            flagged("postgres://u:p@db.internal/db?sslmode=require"),
            None
        );
        assert_eq!(flagged("postgres://u:p@127.0.0.1/db"), None);
        assert_eq!(flagged("postgres://u:p@[::1]:5432/db"), None);
    }
}
