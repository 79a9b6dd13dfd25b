//! Endpoint health as the senders see it: runs of failed attempts and the failing
//! levels announced in each run, endpoints disabled for failing too long or for
//! answering 410, breaker states, and dead deliveries counted per tenant window.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};
use crate::model::CircuitState;

/// An endpoint and its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Subject {
    pub endpoint_id: Uuid,
    pub tenant_id: Uuid,
}

/// An endpoint whose run of failures reached a higher level.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Failing {
    #[sqlx(flatten)]
    pub subject: Subject,
    /// 50, 70, 90 or 100: the share reached of what opens its breaker or disables it.
    pub level: i16,
    pub failure_streak: i32,
    pub failing_since: DateTime<Utc>,
    pub disables_at: DateTime<Utc>,
}

/// The failing levels: shares, in %, of what opens the breaker or disables the endpoint.
pub const FAILING_LEVELS: [i16; 4] = [50, 70, 90, 100];

/// What one round of health notes changed.
#[derive(Debug, Default)]
pub struct HealthChanges {
    /// Disabled just now: every attempt failed for too long.
    pub disabled: Vec<Subject>,
    /// Each failing level reached (one entry per level crossed).
    pub failing: Vec<Failing>,
    /// Succeeded after having reached a failing level.
    pub recovered: Vec<Subject>,
}

#[derive(sqlx::FromRow)]
struct FailedRow {
    #[sqlx(flatten)]
    failing: Failing,
    was_level: i16,
    disabled_now: bool,
}

impl Store {
    /// Disables an endpoint on hookrelay's own initiative, keeping the reason; what
    /// it held (paused, or waiting in its order) is cancelled, as a disable by hand
    /// does. Returns it when it was enabled until now.
    pub async fn disable_endpoint(&self, id: Uuid, reason: &str) -> Result<Option<Subject>> {
        let mut tx = self.pool.begin().await?;
        let disabled: Option<Subject> = sqlx::query_as(
            "UPDATE endpoints e SET disabled = true, disabled_reason = $2, updated_at = now()
             FROM (SELECT id, disabled FROM endpoints WHERE id = $1 FOR UPDATE) old
             WHERE e.id = old.id AND NOT old.disabled
             RETURNING e.id AS endpoint_id, e.tenant_id",
        )
        .bind(id)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
        Self::cancel_held(&mut tx, id).await?;
        tx.commit().await?;
        Ok(disabled)
    }

    /// Tracks each endpoint's run of failures (`failed`: endpoint and failed
    /// attempts) and disables those failing for longer than `disable_after`;
    /// `opens_after` is the run that opens a breaker. Says which endpoints were
    /// disabled, reached a higher failing level, or recovered from one.
    pub async fn note_health(
        &self,
        succeeded: &[Uuid],
        failed: &[(Uuid, i32)],
        disable_after: std::time::Duration,
        opens_after: u32,
    ) -> Result<HealthChanges> {
        let mut tx = self.pool.begin().await?;
        let recovered: Vec<(Uuid, Uuid, i16)> = sqlx::query_as(
            "WITH old AS (
                SELECT id, failing_level FROM endpoints
                WHERE id = ANY($1) AND (failing_since IS NOT NULL OR failure_streak > 0 OR failing_level > 0)
                FOR UPDATE
             )
             UPDATE endpoints e SET failing_since = NULL, failure_streak = 0, failing_level = 0
             FROM old WHERE e.id = old.id
             RETURNING e.id, e.tenant_id, old.failing_level",
        )
        .bind(succeeded)
        .fetch_all(&mut *tx)
        .await?;
        let (ids, counts): (Vec<Uuid>, Vec<i32>) = failed
            .iter()
            .filter(|(id, _)| !succeeded.contains(id))
            .copied()
            .unzip();
        let rows: Vec<FailedRow> = sqlx::query_as(
            "WITH old AS (
                SELECT id, disabled, failing_level, failure_streak, COALESCE(failing_since, now()) AS since
                FROM endpoints WHERE id = ANY($1) FOR UPDATE
             ), next AS (
                SELECT old.*, old.failure_streak + f.n AS streak,
                       old.since < now() - $3 * interval '1 millisecond' AS too_long,
                       hookrelay_failing_level(old.failure_streak + f.n, $4,
                           extract(epoch FROM now() - old.since) * 1000, $3) AS level
                FROM old JOIN unnest($1::uuid[], $2::int[]) AS f(id, n) ON f.id = old.id
             )
             UPDATE endpoints e SET
                failing_since = next.since,
                failure_streak = next.streak,
                failing_level = GREATEST(e.failing_level, next.level),
                disabled = e.disabled OR next.too_long,
                disabled_reason = CASE WHEN NOT e.disabled AND next.too_long
                    THEN 'every attempt failed since ' || to_char(next.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
                    ELSE e.disabled_reason END,
                updated_at = now()
             FROM next WHERE e.id = next.id
             RETURNING e.id AS endpoint_id, e.tenant_id, e.failing_level AS level, e.failure_streak,
                       e.failing_since, e.failing_since + $3 * interval '1 millisecond' AS disables_at,
                       next.failing_level AS was_level, NOT next.disabled AND next.too_long AS disabled_now",
        )
        .bind(&ids)
        .bind(&counts)
        .bind(disable_after.as_millis() as f64)
        .bind(i32::try_from(opens_after).unwrap_or(i32::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let mut changes = HealthChanges {
            recovered: recovered
                .into_iter()
                .filter(|(_, _, was)| *was > 0)
                .map(|(endpoint_id, tenant_id, _)| Subject { endpoint_id, tenant_id })
                .collect(),
            ..HealthChanges::default()
        };
        for row in rows {
            if row.disabled_now {
                Self::cancel_held(&mut tx, row.failing.subject.endpoint_id).await?;
                changes.disabled.push(row.failing.subject);
            }
            // Every level crossed, once: a batch of failures may cross several.
            for level in FAILING_LEVELS
                .into_iter()
                .filter(|l| (row.was_level + 1..=row.failing.level).contains(l))
            {
                changes
                    .failing
                    .push(Failing { level, ..row.failing.clone() });
            }
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// Saves the breaker state the owning dispatcher reports.
    pub async fn set_circuit(
        &self,
        id: Uuid,
        state: CircuitState,
        opened_at: Option<DateTime<Utc>>,
        next_probe_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE endpoints SET circuit_state = $2, circuit_opened_at = $3, circuit_next_probe_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(opened_at)
        .bind(next_probe_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Those of `endpoints` that receive operational events (they name a
    /// `hookrelay.` type or pattern): none is raised about them.
    pub async fn operational_endpoints(
        &self,
        endpoints: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>> {
        if endpoints.is_empty() {
            return Ok(Default::default());
        }
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM endpoints WHERE id = ANY($1)
               AND EXISTS (SELECT 1 FROM unnest(event_types) AS t WHERE t LIKE 'hookrelay.%')",
        )
        .bind(endpoints)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Counts dead deliveries (tenant, how many) in the current window of
    /// `window`; returns the tenants whose count crossed `threshold` just now,
    /// with the window's start and count. Windows older than a day are dropped.
    pub async fn count_dead(
        &self,
        per_tenant: &[(Uuid, i32)],
        window: std::time::Duration,
        threshold: i32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>, i32)>> {
        let (tenants, counts): (Vec<Uuid>, Vec<i32>) = per_tenant.iter().copied().unzip();
        let rows: Vec<(Uuid, DateTime<Utc>, i32, i32)> = sqlx::query_as(
            "WITH added AS (
                INSERT INTO dead_letter_windows (tenant_id, window_start, dead)
                SELECT t.id, to_timestamp(floor(extract(epoch FROM now()) / $3) * $3), t.n
                FROM unnest($1::uuid[], $2::int[]) AS t(id, n)
                ON CONFLICT (tenant_id, window_start) DO UPDATE SET dead = dead_letter_windows.dead + EXCLUDED.dead
                RETURNING tenant_id, window_start, dead
             ), pruned AS (
                DELETE FROM dead_letter_windows
                WHERE tenant_id = ANY($1) AND window_start < now() - interval '1 day'
             )
             SELECT a.tenant_id, a.window_start, a.dead, t.n
             FROM added a JOIN unnest($1::uuid[], $2::int[]) AS t(id, n) ON t.id = a.tenant_id",
        )
        .bind(&tenants)
        .bind(&counts)
        .bind(window.as_secs_f64().max(1.0))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(_, _, dead, n)| *dead >= threshold && dead - n < threshold)
            .map(|(tenant, start, dead, _)| (tenant, start, dead))
            .collect())
    }
}
