//! What the console's charts draw: attempts by outcome and their latency buckets
//! per bin (fleet-wide, per tenant or per endpoint) from the per-minute rollup, the
//! fleet's backlog and lag per bin, and each endpoint's recent success for the
//! sparklines. A bin with no row had no attempts; callers fill the gaps.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};

/// Upper bounds (ms) of the rollup's latency buckets; the last bucket is above them.
pub const LATENCY_BOUNDS_MS: [u32; 11] =
    [25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

/// Attempts in one bin.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AttemptBin {
    pub at: DateTime<Utc>,
    /// 2xx answers.
    pub ok: i64,
    pub total: i64,
    /// Attempts that left their delivery dead.
    pub dead: i64,
    /// Counts per latency bucket (see `LATENCY_BOUNDS_MS`).
    pub latency: Vec<i64>,
}

/// The fleet's backlog and lag in one bin (the largest sampled).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct LagBin {
    pub at: DateTime<Utc>,
    pub due: i64,
    pub oldest_undelivered_seconds: f64,
}

/// One endpoint's attempts in one bin.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuccessBin {
    pub endpoint_id: Uuid,
    pub at: DateTime<Utc>,
    pub ok: i64,
    pub total: i64,
}

/// Which attempts a chart counts.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Fleet,
    Endpoint { tenant: Uuid, endpoint: Uuid },
}

impl Store {
    /// Attempts over the last `span_minutes`, in bins of `bin_minutes`.
    pub async fn attempt_bins(
        &self,
        scope: Scope,
        span_minutes: i32,
        bin_minutes: i32,
    ) -> Result<Vec<AttemptBin>> {
        let (tenant, endpoint) = match scope {
            Scope::Fleet => (None, None),
            Scope::Endpoint { tenant, endpoint } => (Some(tenant), Some(endpoint)),
        };
        let buckets: Vec<String> = (1..=LATENCY_BOUNDS_MS.len() + 1)
            .map(|k| format!("coalesce(sum(m.latency[{k}]), 0)"))
            .collect();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT date_bin(make_interval(mins => $3), m.minute, TIMESTAMPTZ 'epoch') AS at,
                    sum(m.ok)::int8 AS ok, sum(m.total)::int8 AS total, sum(m.dead)::int8 AS dead,
                    ARRAY[{}]::int8[] AS latency
             FROM endpoint_health_minutes m JOIN endpoints e ON e.id = m.endpoint_id
             WHERE m.minute > now() - make_interval(mins => $4)
               AND ($1::uuid IS NULL OR e.tenant_id = $1)
               AND ($2::uuid IS NULL OR m.endpoint_id = $2)
             GROUP BY 1 ORDER BY 1",
            buckets.join(", ")
        )))
        .bind(tenant)
        .bind(endpoint)
        .bind(bin_minutes)
        .bind(span_minutes)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The fleet's backlog and lag over the last `span_minutes`, in bins.
    pub async fn lag_bins(&self, span_minutes: i32, bin_minutes: i32) -> Result<Vec<LagBin>> {
        Ok(sqlx::query_as(
            "SELECT date_bin(make_interval(mins => $1), minute, TIMESTAMPTZ 'epoch') AS at,
                    max(due)::int8 AS due, max(oldest_undelivered_seconds) AS oldest_undelivered_seconds
             FROM fleet_minutes WHERE minute > now() - make_interval(mins => $2)
             GROUP BY 1 ORDER BY 1",
        )
        .bind(bin_minutes)
        .bind(span_minutes)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Keeps this minute's largest backlog and lag (every sampler writes; the
    /// largest wins).
    pub async fn record_fleet_minute(
        &self,
        due: i64,
        oldest_undelivered_seconds: f64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO fleet_minutes AS f (minute, due, oldest_undelivered_seconds)
             VALUES (date_trunc('minute', now()), $1, $2)
             ON CONFLICT (minute) DO UPDATE SET
                due = greatest(f.due, excluded.due),
                oldest_undelivered_seconds = greatest(f.oldest_undelivered_seconds, excluded.oldest_undelivered_seconds)",
        )
        .bind(due)
        .bind(oldest_undelivered_seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Each of a tenant's endpoints' attempts over the last `span_minutes`, in bins.
    pub async fn success_bins(
        &self,
        tenant: Uuid,
        span_minutes: i32,
        bin_minutes: i32,
    ) -> Result<Vec<SuccessBin>> {
        Ok(sqlx::query_as(
            "SELECT m.endpoint_id, date_bin(make_interval(mins => $2), m.minute, TIMESTAMPTZ 'epoch') AS at,
                    sum(m.ok)::int8 AS ok, sum(m.total)::int8 AS total
             FROM endpoint_health_minutes m JOIN endpoints e ON e.id = m.endpoint_id
             WHERE e.tenant_id = $1 AND m.minute > now() - make_interval(mins => $3)
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(tenant)
        .bind(bin_minutes)
        .bind(span_minutes)
        .fetch_all(&self.pool)
        .await?)
    }
}
