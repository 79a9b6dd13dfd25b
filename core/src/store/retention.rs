//! Retention: history lives in daily partitions (events by acceptance time,
//! deliveries and attempts by their time-ordered ids), made a few days ahead and
//! dropped whole once past `HOOKRELAY_RETENTION`, so pruning costs one statement
//! per day however many rows it held. Upkeep never stalls routing: a day's tables
//! are made apart and attached (a SHARE UPDATE EXCLUSIVE lock on the parent, which
//! inserts pass), old days are detached concurrently before they are dropped, and
//! every lock is awaited briefly and retried rather than queued behind. Smaller
//! tables (finished jobs and key rotations, used console links, deleted endpoints
//! with their secrets) are pruned by row.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sqlx::PgConnection;

use super::{Result, Store, StoreError};

/// What one pass of retention did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub days_created: i64,
    pub days_dropped: i64,
    pub bodies_cleared_days: i64,
    pub rows_deleted: u64,
}

/// Days of partitions kept ready ahead of today.
pub const DAYS_AHEAD: i64 = 3;
/// Only one process at a time creates and drops partitions.
const RETENTION_LOCK: i64 = 0x6872_7265_7465_6e74; // "hrretent"
/// How long upkeep waits for a lock before it gives way and tries again: anyone
/// queued behind it waits at most this long.
const LOCK_WAIT: &str = "1s";
/// How long a concurrent detach may wait for the transactions that still see the
/// partition (a long report, say): nobody queues behind it, since it takes no lock
/// that reads, inserts or updates wait for.
const DETACH_WAIT: &str = "60s";
/// Tries of one piece of upkeep that meets a lock (or a deadlock) before the pass
/// gives up until the next one.
const TRIES: u32 = 5;
/// The tables of one day, in the order they are dropped.
const DAY_TABLES: [&str; 3] = ["attempts", "deliveries", "events"];

/// Whether `e` is a lock wait that gave up or a deadlock: worth another try.
fn lock_lost(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db))
        if matches!(db.code().as_deref(), Some("55P03" | "40P01")))
}

/// Evaluates `$step` (a future) until it succeeds, trying again after a lock
/// loss with a growing pause, `TRIES` times at most.
macro_rules! retried {
    ($step:expr) => {{
        let mut pause = std::time::Duration::from_millis(50);
        let mut tries = 1;
        loop {
            match $step.await {
                Err(e) if lock_lost(&e) && tries < TRIES => {
                    tracing::info!(error = %e, "partition upkeep gave way to traffic; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    tries += 1;
                }
                other => break other,
            }
        }
    }};
}

/// A day's partitions exist afterwards; `true` if this call made any.
async fn ensure_day(conn: &mut PgConnection, day: NaiveDate) -> Result<bool> {
    retried!(ensure_day_once(&mut *conn, day))
}

async fn ensure_day_once(conn: &mut PgConnection, day: NaiveDate) -> Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{LOCK_WAIT}'"
    )))
    .execute(&mut *tx)
    .await?;
    let made: bool = sqlx::query_scalar("SELECT hookrelay_ensure_day($1)")
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(made)
}

/// One statement outside a transaction (simple protocol, as DETACH ... CONCURRENTLY
/// needs), after `SET lock_timeout = wait`.
async fn autocommit(conn: &mut PgConnection, wait: &str, sql: &str) -> Result<()> {
    // Two queries: one string of several statements would be one transaction.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET lock_timeout = '{wait}'")))
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Detaches `table` from `parent` if it is still attached: concurrently, or, when
/// an earlier try was cut short and left the detach pending, by finishing it.
async fn detach(conn: &mut PgConnection, parent: &str, table: &str) -> Result<()> {
    let attached: Option<bool> = sqlx::query_scalar(
        "SELECT i.inhdetachpending FROM pg_inherits i
          WHERE i.inhrelid = to_regclass($1) AND i.inhparent = $2::regclass",
    )
    .bind(table)
    .bind(parent)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(pending) = attached else {
        return Ok(());
    };
    let how = if pending { "FINALIZE" } else { "CONCURRENTLY" };
    let sql = format!("ALTER TABLE {parent} DETACH PARTITION {table} {how}");
    autocommit(conn, DETACH_WAIT, &sql).await
}

/// Detaches (concurrently) and drops every day's tables that ended before
/// `cutoff`; returns how many days went. Picks up a detach an earlier pass left
/// pending.
async fn drop_days_before(conn: &mut PgConnection, cutoff: DateTime<Utc>) -> Result<i64> {
    let days: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT substring(relname from '_p([0-9]{8})$') AS day FROM pg_class
          WHERE relkind = 'r' AND relname ~ '^(events|deliveries|attempts)_p[0-9]{8}$'
            AND (to_date(substring(relname from '_p([0-9]{8})$'), 'YYYYMMDD') + 1)::timestamp
                AT TIME ZONE 'UTC' <= $1
          ORDER BY day",
    )
    .bind(cutoff)
    .fetch_all(&mut *conn)
    .await?;
    for day in &days {
        // Digits only (the pattern above): safe to name in a statement.
        debug_assert!(day.bytes().all(|b| b.is_ascii_digit()));
        for parent in DAY_TABLES {
            let table = format!("{parent}_p{day}");
            retried!(detach(&mut *conn, parent, &table))?;
            let drop = format!("DROP TABLE IF EXISTS {table}");
            retried!(autocommit(&mut *conn, LOCK_WAIT, &drop))?;
        }
    }
    Ok(days.len() as i64)
}

impl Store {
    /// Makes one day's partitions, if they are missing (for a row that found none).
    pub async fn ensure_partitions(&self, day: NaiveDate) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        ensure_day(&mut conn, day).await
    }

    /// One retention pass, as of `now`: partitions for today and `DAYS_AHEAD` days,
    /// every day that ended `retention` ago dropped, response bodies and request
    /// headers cleared from days older than `bodies` (once per day), and finished
    /// small rows pruned. Skipped (returns `None`) while another process runs one.
    pub async fn apply_retention(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        bodies: Option<Duration>,
    ) -> Result<Option<Pruned>> {
        let mut conn = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RETENTION_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if !locked {
            return Ok(None);
        }
        let pass = retention_pass(&mut conn, now, retention, bodies).await;
        // The connection goes back to the pool: as it came, or not at all.
        let reset = sqlx::raw_sql("RESET lock_timeout")
            .execute(&mut *conn)
            .await
            .and(
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(RETENTION_LOCK)
                    .execute(&mut *conn)
                    .await,
            );
        if reset.is_err() {
            conn.close_on_drop();
        }
        pass.map(Some)
    }
}

async fn retention_pass(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    retention: Duration,
    bodies: Option<Duration>,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    let today = now.date_naive();
    for ahead in 0..=DAYS_AHEAD {
        let made = ensure_day(conn, today + Duration::days(ahead)).await?;
        pruned.days_created += i64::from(made);
    }
    let cutoff = now - retention;
    pruned.days_dropped = drop_days_before(conn, cutoff).await?;
    if let Some(bodies) = bodies {
        pruned.bodies_cleared_days = i64::from(
            sqlx::query_scalar::<_, i32>("SELECT hookrelay_clear_bodies_before($1)")
                .bind(now - bodies)
                .fetch_one(&mut *conn)
                .await?,
        );
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for sql in [
        "DELETE FROM jobs WHERE status = 'done' AND finished_at < $1",
        "DELETE FROM key_rotations WHERE status = 'done' AND finished_at < $1",
        // An endpoint deleted before the cutoff has no history left to show (its
        // deliveries went with their days); its row and secrets go now.
        "WITH gone AS (
           SELECT e.id FROM endpoints e WHERE e.deleted_at < $1
              AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id)
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.endpoint_id = e.id)
         ), rollup AS (
           DELETE FROM endpoint_health_minutes WHERE endpoint_id IN (SELECT id FROM gone)
         )
         DELETE FROM endpoints WHERE id IN (SELECT id FROM gone)",
    ] {
        pruned.rows_deleted += sqlx::query(sql)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(pruned)
}
