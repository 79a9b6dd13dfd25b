//! Reads for the console: endpoint health at a glance, the event and delivery logs
//! with their filters, and the fleet's numbers for operators.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::deliveries::DELIVERY_COLUMNS;
use super::{Result, Store};
use crate::model::{Delivery, DeliveryStatus};

/// Attempts towards an endpoint over the last hour and day, and how many got a 2xx.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct EndpointHealth {
    pub endpoint_id: Uuid,
    pub hour_total: i64,
    pub hour_ok: i64,
    pub day_total: i64,
    pub day_ok: i64,
    pub last_error: Option<String>,
}

/// An event as the console lists it: what it is and how its deliveries stand.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventSummary {
    pub id: Uuid,
    pub event_type: String,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deliveries: i64,
    pub delivered: i64,
    /// `failed` (retrying) or `dead`.
    pub failing: i64,
}

/// Which deliveries a console user wants to see; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// An event id or an idempotency key.
    pub search: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// What an on-call person watches, fleet-wide: the metrics' gauges.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Backlog {
    /// Deliveries due now and not sent yet.
    pub due: i64,
    /// Age of the oldest pending or failed delivery, in seconds (0 when none).
    pub oldest_undelivered_seconds: f64,
    pub dead: i64,
    pub open_circuits: i64,
}

/// The operator's overview.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct FleetNumbers {
    pub delivered_last_minute: i64,
    pub failed_last_minute: i64,
    pub open_breakers: i64,
    pub disabled_endpoints: i64,
    pub dispatchers: i64,
    pub dead: i64,
}

impl Store {
    /// Health of a tenant's endpoints over the last hour and day, from the per-minute
    /// rollup that recording attempts keeps.
    pub async fn endpoint_health(&self, tenant_id: Uuid) -> Result<Vec<EndpointHealth>> {
        Ok(sqlx::query_as(
            "SELECT m.endpoint_id,
                    coalesce(sum(m.total) FILTER (WHERE m.minute > now() - interval '1 hour'), 0)::int8 AS hour_total,
                    coalesce(sum(m.ok) FILTER (WHERE m.minute > now() - interval '1 hour'), 0)::int8 AS hour_ok,
                    sum(m.total)::int8 AS day_total,
                    sum(m.ok)::int8 AS day_ok,
                    (array_agg(m.last_error ORDER BY m.last_error_at DESC)
                        FILTER (WHERE m.last_error_at IS NOT NULL))[1] AS last_error
             FROM endpoints e JOIN endpoint_health_minutes m ON m.endpoint_id = e.id
             WHERE e.tenant_id = $1 AND e.deleted_at IS NULL AND m.minute > now() - interval '1 day'
             GROUP BY m.endpoint_id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks a console link as used; `false` if it was used before. Forgets links
    /// past their expiry on the way (they are refused by their signature anyway).
    pub async fn use_console_link(
        &self,
        id: Uuid,
        expires_at: DateTime<Utc>,
        tenant_id: Uuid,
        by: &crate::audit::Actor,
    ) -> Result<bool> {
        sqlx::query("DELETE FROM console_link_uses WHERE expires_at < now()")
            .execute(&self.pool)
            .await?;
        let used: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(super::audit::audited(
            "INSERT INTO console_link_uses (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING
             RETURNING id",
            3,
            "$4",
            "changed.id",
        )))
        .bind(id)
        .bind(expires_at)
        .bind(super::audit::Pending::new(
            by,
            crate::audit::action::CONSOLE_SIGN_IN,
            serde_json::json!({ "session": "tenant" }),
        ))
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(used.is_some())
    }

    /// Drops health rollup rows older than two days; returns how many.
    pub async fn prune_health_minutes(&self) -> Result<u64> {
        Ok(sqlx::query(
            "WITH fleet AS (DELETE FROM fleet_minutes WHERE minute < now() - interval '2 days')
             DELETE FROM endpoint_health_minutes WHERE minute < now() - interval '2 days'",
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// A tenant's deliveries, newest first, filtered; `limit + 1` rows say if there is more.
    pub async fn find_deliveries(
        &self,
        tenant_id: Uuid,
        f: &DeliveryFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<Delivery>> {
        self.check_cursor(super::Listed::Deliveries, tenant_id, after)
            .await?;
        let events = self.searched_events(tenant_id, f).await?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.tenant_id = $1
               AND ($2::uuid IS NULL OR d.endpoint_id = $2)
               AND ($3::text IS NULL OR e.event_type = $3)
               AND ($4::text IS NULL OR d.status = $4)
               AND ($5::uuid[] IS NULL OR d.event_id = ANY($5))
               AND ($6::timestamptz IS NULL OR d.created_at >= $6)
               AND ($7::timestamptz IS NULL OR d.created_at < $7)
               AND ($8::uuid IS NULL OR (d.created_at, d.id) < (SELECT created_at, id FROM deliveries WHERE id = $8 AND tenant_id = $1))
             ORDER BY d.created_at DESC, d.id DESC LIMIT $9"
        )))
        .bind(tenant_id)
        .bind(f.endpoint_id)
        .bind(f.event_type.as_deref())
        .bind(f.status.map(DeliveryStatus::as_str))
        .bind(events)
        .bind(f.since)
        .bind(f.until)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The events a search names (by event id, delivery id or idempotency key, all
    /// indexed), so the listings never scan for it; `None` without a search.
    async fn searched_events(
        &self,
        tenant_id: Uuid,
        f: &DeliveryFilter,
    ) -> Result<Option<Vec<Uuid>>> {
        let Some(s) = f.search.as_deref().map(str::trim) else {
            return Ok(None);
        };
        Ok(Some(match Uuid::parse_str(s) {
            Ok(id) => {
                sqlx::query_scalar(
                    "SELECT id FROM events WHERE tenant_id = $1 AND id = $2
                     UNION SELECT event_id FROM deliveries WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant_id)
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            Err(_) => {
                sqlx::query_scalar(
                    "SELECT id FROM events WHERE tenant_id = $1 AND idempotency_key = $2",
                )
                .bind(tenant_id)
                .bind(s)
                .fetch_all(&self.pool)
                .await?
            }
        }))
    }

    /// A tenant's events, newest first, each with how its deliveries stand. The
    /// endpoint and status filters keep events with at least one such delivery;
    /// `limit + 1` rows say if there is more. An event's deliveries are made after
    /// it was accepted, so their time-ordered ids start at its time (an hour's
    /// slack for skewed clocks): that bound lets each lookup skip every earlier
    /// day's partition.
    pub async fn find_events(
        &self,
        tenant_id: Uuid,
        f: &DeliveryFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<EventSummary>> {
        self.check_cursor(super::Listed::Events, tenant_id, after)
            .await?;
        let events = self.searched_events(tenant_id, f).await?;
        Ok(sqlx::query_as(
            "SELECT e.id, e.event_type, e.idempotency_key, e.created_at,
                    count(d.id) AS deliveries,
                    count(d.id) FILTER (WHERE d.status = 'delivered') AS delivered,
                    count(d.id) FILTER (WHERE d.status IN ('failed', 'dead')) AS failing
             FROM (
                SELECT e.id, e.event_type, e.idempotency_key, e.created_at FROM events e
                WHERE e.tenant_id = $1
                  AND ($3::text IS NULL OR e.event_type = $3)
                  AND ($5::uuid[] IS NULL OR e.id = ANY($5))
                  AND ($6::timestamptz IS NULL OR e.created_at >= $6)
                  AND ($7::timestamptz IS NULL OR e.created_at < $7)
                  AND ($8::uuid IS NULL OR (e.created_at, e.id) < (SELECT created_at, id FROM events WHERE id = $8 AND tenant_id = $1))
                  AND (($2::uuid IS NULL AND $4::text IS NULL) OR EXISTS (
                        SELECT 1 FROM deliveries m WHERE m.event_id = e.id
                          AND m.id >= hookrelay_v7_floor(e.created_at - interval '1 hour')
                          AND ($2::uuid IS NULL OR m.endpoint_id = $2)
                          AND ($4::text IS NULL OR m.status = $4)))
                ORDER BY e.created_at DESC, e.id DESC LIMIT $9
             ) e
             LEFT JOIN deliveries d ON d.event_id = e.id
                  AND d.id >= hookrelay_v7_floor(e.created_at - interval '1 hour')
             GROUP BY e.id, e.event_type, e.idempotency_key, e.created_at
             ORDER BY e.created_at DESC, e.id DESC",
        )
        .bind(tenant_id)
        .bind(f.endpoint_id)
        .bind(f.event_type.as_deref())
        .bind(f.status.map(DeliveryStatus::as_str))
        .bind(events)
        .bind(f.since)
        .bind(f.until)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The fleet page's tiles. Deliveries and failures come from the per-minute
    /// rollup (the last full minute), not from scanning the history.
    pub async fn fleet_numbers(&self) -> Result<FleetNumbers> {
        Ok(sqlx::query_as(
            "SELECT
                (SELECT coalesce(sum(ok), 0)::int8 FROM endpoint_health_minutes
                    WHERE minute = date_trunc('minute', now()) - interval '1 minute') AS delivered_last_minute,
                (SELECT coalesce(sum(total - ok), 0)::int8 FROM endpoint_health_minutes
                    WHERE minute = date_trunc('minute', now()) - interval '1 minute') AS failed_last_minute,
                (SELECT count(*) FROM endpoints WHERE deleted_at IS NULL AND circuit_state <> 'closed') AS open_breakers,
                (SELECT count(*) FROM endpoints WHERE deleted_at IS NULL AND disabled) AS disabled_endpoints,
                (SELECT count(*) FROM dispatchers WHERE heartbeat_at > now() - interval '30 seconds') AS dispatchers,
                (SELECT count(*) FROM deliveries WHERE status = 'dead') AS dead",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The backlog gauges, from the partial indexes on due and dead deliveries.
    pub async fn backlog(&self) -> Result<Backlog> {
        Ok(sqlx::query_as(
            "SELECT
                (SELECT count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL
                    AND next_attempt_at <= now() AND status IN ('pending', 'failed')) AS due,
                coalesce((SELECT extract(epoch FROM now() - min(created_at))::float8 FROM deliveries
                    WHERE next_attempt_at IS NOT NULL AND status IN ('pending', 'failed')), 0) AS oldest_undelivered_seconds,
                (SELECT count(*) FROM deliveries WHERE status = 'dead') AS dead,
                (SELECT count(*) FROM endpoints WHERE deleted_at IS NULL AND circuit_state <> 'closed') AS open_circuits",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
