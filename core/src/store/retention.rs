//! Retention: history lives in daily partitions (events by acceptance time,
//! deliveries and attempts by their time-ordered ids), created a few days ahead
//! and dropped whole once past `HOOKRELAY_RETENTION`, so pruning costs one
//! statement per day however many rows it held. Smaller tables (finished jobs and
//! key rotations, used console links, deleted endpoints with their secrets) are
//! pruned by row.

use chrono::{DateTime, Duration, Utc};

use super::{Result, Store};

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

impl Store {
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
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RETENTION_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        // Creating and dropping partitions locks their parent for a moment: never
        // queue behind a long query (and so hold up everyone behind us).
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *tx)
            .await?;
        let mut pruned = Pruned::default();
        let today = now.date_naive();
        for ahead in 0..=DAYS_AHEAD {
            let day = today + Duration::days(ahead);
            let created: bool = sqlx::query_scalar("SELECT hookrelay_ensure_day($1)")
                .bind(day)
                .fetch_one(&mut *tx)
                .await?;
            pruned.days_created += i64::from(created);
        }
        let cutoff = now - retention;
        pruned.days_dropped = i64::from(
            sqlx::query_scalar::<_, i32>("SELECT hookrelay_drop_days_before($1)")
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await?,
        );
        if let Some(bodies) = bodies {
            pruned.bodies_cleared_days = i64::from(
                sqlx::query_scalar::<_, i32>("SELECT hookrelay_clear_bodies_before($1)")
                    .bind(now - bodies)
                    .fetch_one(&mut *tx)
                    .await?,
            );
        }
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
        Ok(Some(pruned))
    }
}
