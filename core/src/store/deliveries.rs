//! Deliveries: test deliveries, the scheduler's due rows, parking and leases,
//! cancelling, and the API's reads. The router's write is `routing`, the sender's
//! claims are `claims`, its attempt records `attempts`.

use uuid::Uuid;

use super::{Result, Store};
use crate::ids::new_id;
use crate::model::{Delivery, DeliveryStatus};

pub(super) const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.endpoint_id, d.tenant_id, e.event_type, d.status, d.attempts,
    d.next_attempt_at, d.last_attempt_at, d.last_response_status, d.last_error, d.delivered_at,
    (d.next_attempt_at IS NULL AND d.status IN ('pending', 'failed')) AS held,
    CASE WHEN d.next_attempt_at IS NULL AND d.accepted_at IS NOT NULL AND d.status IN ('pending', 'failed') THEN
        (SELECT h.id FROM deliveries h WHERE h.endpoint_id = d.endpoint_id AND h.accepted_at IS NOT NULL
            AND h.status IN ('pending', 'failed') AND h.next_attempt_at IS NOT NULL LIMIT 1) END AS blocked_by,
    d.cancelled_by, d.created_at, d.updated_at";

/// A delivery to publish: where it goes, and its attempt count at this decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct NewDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub attempts: i32,
}

impl Store {
    /// A test event for one endpoint, whatever it subscribes to, and its delivery,
    /// for the caller to publish (see `PUBLISH_FALLBACK_SECS`). `None` when the
    /// tenant has no such endpoint.
    pub async fn insert_test_delivery(
        &self,
        tenant_id: Uuid,
        endpoint_id: Uuid,
        event_type: &str,
        payload: &str,
    ) -> Result<Option<NewDelivery>> {
        let mut tx = self.pool.begin().await?;
        let found: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM endpoints WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR SHARE",
        )
        .bind(tenant_id)
        .bind(endpoint_id)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Ok(None);
        }
        let event_id = new_id();
        sqlx::query(
            "INSERT INTO events (id, tenant_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, now())",
        )
        .bind(event_id)
        .bind(tenant_id)
        .bind(event_type)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
        let delivery: NewDelivery = sqlx::query_as(
            "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, next_attempt_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id, endpoint_id, attempts",
        )
        .bind(new_id())
        .bind(event_id)
        .bind(endpoint_id)
        .bind(tenant_id)
        .bind(super::PUBLISH_FALLBACK_SECS)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(delivery))
    }

    /// Deliveries of these events that were routed but never attempted: what a
    /// router must publish again when an ingest message comes back after a crash.
    pub async fn unattempted_deliveries(&self, event_ids: &[Uuid]) -> Result<Vec<NewDelivery>> {
        Ok(sqlx::query_as(
            "SELECT id, endpoint_id, attempts FROM deliveries
             WHERE event_id = ANY($1) AND status = 'pending' AND attempts = 0",
        )
        .bind(event_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Where these deliveries go (those that exist): for republishing messages
    /// to the right shard.
    pub async fn delivery_endpoints(&self, delivery_ids: &[Uuid]) -> Result<Vec<NewDelivery>> {
        Ok(
            sqlx::query_as("SELECT id, endpoint_id, attempts FROM deliveries WHERE id = ANY($1)")
                .bind(delivery_ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Claims deliveries whose next attempt is due, pushing their due time out by
    /// `lease` so a lost message is claimed again later. Safe with many schedulers at
    /// once (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_due(
        &self,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<NewDelivery>> {
        Ok(sqlx::query_as(
            "UPDATE deliveries SET next_attempt_at = now() + $2 * interval '1 millisecond', updated_at = now()
             WHERE id IN (
                SELECT id FROM deliveries
                WHERE next_attempt_at <= now() AND status IN ('pending', 'failed')
                  AND (claimed_until IS NULL OR claimed_until < now())
                ORDER BY next_attempt_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED)
             RETURNING id, endpoint_id, attempts",
        )
        .bind(limit)
        .bind(lease.as_millis() as f64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Puts deliveries back for later without an attempt (rate limit, concurrency cap,
    /// open breaker): each id due after its own wait, reckoned on the database's
    /// clock. Parking ends the sender's claim.
    pub async fn park(&self, parked: &[(Uuid, std::time::Duration)]) -> Result<()> {
        if parked.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => p.wait),
                    claimed_until = NULL, updated_at = now()
             FROM UNNEST($1::uuid[], $2::float8[]) AS p(id, wait)
             WHERE d.id = p.id AND d.status IN ('pending', 'failed')",
        )
        .bind(parked.iter().map(|p| p.0).collect::<Vec<_>>())
        .bind(parked.iter().map(|p| p.1.as_secs_f64()).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves in-flight deliveries' due time, and their claim, to `wait` from now
    /// (database clock): a slow request's lease, should its sender die.
    pub async fn extend_due(&self, leases: &[(Uuid, std::time::Duration)]) -> Result<()> {
        if leases.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => p.wait),
                    claimed_until = now() + make_interval(secs => p.wait), updated_at = now()
             FROM UNNEST($1::uuid[], $2::float8[]) AS p(id, wait)
             WHERE d.id = p.id AND d.status IN ('pending', 'failed')",
        )
        .bind(leases.iter().map(|p| p.0).collect::<Vec<_>>())
        .bind(leases.iter().map(|p| p.1.as_secs_f64()).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How long until the earliest scheduled attempt (zero when one is overdue), on
    /// the database's clock; `None` when nothing is scheduled.
    pub async fn next_due_in(&self) -> Result<Option<std::time::Duration>> {
        let secs: Option<f64> = sqlx::query_scalar(
            "SELECT greatest(extract(epoch FROM min(next_attempt_at) - now()), 0)::float8
             FROM deliveries WHERE next_attempt_at IS NOT NULL AND status IN ('pending', 'failed')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(secs.map(|s| std::time::Duration::from_secs_f64(s.clamp(0.0, 86_400.0))))
    }

    /// Marks still-pending deliveries as not to be sent, with the reason.
    pub async fn cancel_deliveries(&self, delivery_ids: &[Uuid], reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', last_error = $2, next_attempt_at = NULL,
                    claimed_until = NULL, updated_at = now()
             WHERE id = ANY($1) AND status IN ('pending', 'failed')",
        )
        .bind(delivery_ids)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_delivery(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<Delivery>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.tenant_id = $1 AND d.id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A tenant's deliveries, newest first, optionally of one event and/or one status.
    pub async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        event_id: Option<Uuid>,
        status: Option<DeliveryStatus>,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<Delivery>> {
        self.check_cursor(super::Listed::Deliveries, tenant_id, after)
            .await?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.tenant_id = $1
               AND ($2::uuid IS NULL OR d.event_id = $2)
               AND ($3::text IS NULL OR d.status = $3)
               AND ($4::uuid IS NULL OR (d.created_at, d.id) < (SELECT created_at, id FROM deliveries WHERE id = $4 AND tenant_id = $1))
             ORDER BY d.created_at DESC, d.id DESC LIMIT $5"
        )))
        .bind(tenant_id)
        .bind(event_id)
        .bind(status.map(DeliveryStatus::as_str))
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?)
    }
}
