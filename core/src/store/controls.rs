//! Delivery controls: held deliveries (open, without a due time) of paused and
//! ordered endpoints, releasing them on resume, moving an ordered endpoint's head
//! on, stopping it when its head dies, cancelling by hand, and the backlog the API
//! and the gauges show.
//!
//! An ordered endpoint's deliveries carry their event's acceptance time; its head
//! is the one open delivery of them with a due time (or one cancelled while a
//! sender still holds its claim: its request may be going out), the only one a
//! sender can claim. `advance_ordered` gives the oldest held one a due time when
//! there is no head, under a lock per endpoint so two callers never make two heads.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::audit::{Pending, audited, audited_count};
use super::{NewDelivery, PUBLISH_FALLBACK_SECS, Result, Store};
use crate::audit::{Actor, action};
use crate::model::DeliveryStatus;

/// An ordered endpoint's head goes out only once it was routed this long ago (by
/// the database's clock, like every time that gates work), so an event accepted
/// earlier but routed a little later (another router, another ingest message)
/// still goes first.
pub const ORDERING_SETTLE_SECS: f64 = 1.0;
/// Deliveries released on resume that the caller publishes at once (those due
/// within `RELEASED_WITHIN_SECS` at the endpoint's pace, at most this many); the
/// rest fall due at that pace and the scheduler sends them.
const RELEASED_AT_ONCE: i64 = 500;
const RELEASED_WITHIN_SECS: f64 = 0.1;
/// Without a rate limit, released deliveries are spaced this little apart, so
/// the scheduler still takes them oldest first.
const UNLIMITED_SPACING_SECS: f64 = 0.000_01;

/// `h` is the head of its ordered endpoint: open with a due time, or cancelled
/// while still claimed (in flight: the next waits for its attempt to end).
/// `deliveries_ordered_idx` covers both.
macro_rules! is_head {
    () => {
        "h.accepted_at IS NOT NULL AND ((h.status IN ('pending', 'failed') AND h.next_attempt_at IS NOT NULL)
         OR (h.status = 'cancelled' AND h.ordered_claimed_until > now()))"
    };
}

/// A cancelled delivery keeps its claim only while it is live, so the ordered
/// index does not keep rows whose claim lapsed long ago.
macro_rules! cancel_set {
    () => {
        "status = 'cancelled', cancelled_by = $3, last_error = 'cancelled by ' || $3, next_attempt_at = NULL,
         claimed_until = CASE WHEN claimed_until > now() THEN claimed_until END, updated_at = now()"
    };
}
pub(super) use cancel_set;

/// An endpoint's waiting deliveries, as the API and the console show them.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EndpointBacklog {
    pub endpoint_id: Uuid,
    pub paused: bool,
    /// Open deliveries without a due time: paused, or behind an ordered head.
    pub waiting: i64,
    /// When the oldest waiting one was routed.
    pub oldest_waiting_at: Option<DateTime<Utc>>,
    /// The delivery at an ordered endpoint's head, which the others wait behind.
    pub head: Option<Uuid>,
    pub head_attempts: Option<i32>,
    pub head_next_attempt_at: Option<DateTime<Utc>>,
    /// When the head's event was accepted.
    pub head_accepted_at: Option<DateTime<Utc>>,
}

/// The fleet's held work, for the gauges.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct HeldNumbers {
    /// Deliveries waiting on paused endpoints.
    pub paused_backlog: i64,
    /// Age of the oldest head of an ordered endpoint, in seconds (0: none).
    pub oldest_head_seconds: f64,
}

/// What cancelling one delivery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Cancelled now; its endpoint (whose order may move on).
    Now { endpoint_id: Uuid },
    /// Already delivered, dead or cancelled.
    Final(DeliveryStatus),
}

impl Store {
    /// Takes claimed deliveries of paused endpoints out of the way: held, without
    /// their claim and without an attempt. A delivery whose endpoint was resumed
    /// meanwhile is made due now instead; the endpoints are locked first, so a
    /// resume either sees these held or this sees it resumed.
    pub async fn hold_paused(&self, delivery_ids: &[Uuid], endpoint_ids: &[Uuid]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let paused: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM endpoints WHERE id = ANY($1) AND paused AND NOT disabled AND deleted_at IS NULL
             ORDER BY id FOR SHARE",
        )
        .bind(endpoint_ids)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET claimed_until = NULL, updated_at = now(),
                    next_attempt_at = CASE WHEN endpoint_id = ANY($2) THEN NULL ELSE now() END
             WHERE id = ANY($1) AND status IN ('pending', 'failed')",
        )
        .bind(delivery_ids)
        .bind(&paused)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives each ordered endpoint among `endpoint_ids` that has no head (and is
    /// not paused) its oldest held delivery as head. Returns the heads due now, for
    /// the caller to publish; a head routed more recently than the settle time is
    /// due when it has settled, and the scheduler sends it then.
    ///
    /// An unattempted, unclaimed head that an older delivery (routed later) should
    /// precede is held again first, so the older one goes first.
    pub async fn advance_ordered(
        &self,
        endpoint_ids: &[Uuid],
        unsent_lease: std::time::Duration,
    ) -> Result<Vec<NewDelivery>> {
        if endpoint_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(k) FROM (
               SELECT DISTINCT hashtextextended(id::text, 26) AS k FROM unnest($1::uuid[]) AS id ORDER BY k
             ) AS locks",
        )
        .bind(endpoint_ids)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries h SET next_attempt_at = NULL, updated_at = now()
             WHERE h.endpoint_id = ANY($1) AND h.accepted_at IS NOT NULL AND h.status = 'pending'
               AND h.attempts = 0 AND h.next_attempt_at IS NOT NULL
               AND (h.claimed_until IS NULL OR h.claimed_until < now())
               AND EXISTS (SELECT 1 FROM deliveries o
                           WHERE o.endpoint_id = h.endpoint_id AND o.accepted_at IS NOT NULL
                             AND o.status IN ('pending', 'failed') AND o.next_attempt_at IS NULL
                             AND (o.accepted_at, o.event_id) < (h.accepted_at, h.event_id))",
        )
        .bind(endpoint_ids)
        .execute(&mut *tx)
        .await?;
        let heads: Vec<(Uuid, Uuid, i32, bool)> = sqlx::query_as(concat!(
            r#"WITH free AS (
                SELECT e.id FROM endpoints e
                WHERE e.id = ANY($1) AND e.ordering = 'strict' AND NOT e.paused AND NOT e.disabled
                  AND e.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM deliveries h
                                  WHERE h.endpoint_id = e.id AND "#, is_head!(), r#")
             ), next AS (
                SELECT n.id FROM free, LATERAL (
                    SELECT d.id FROM deliveries d
                    WHERE d.endpoint_id = free.id AND d.accepted_at IS NOT NULL AND d.status IN ('pending', 'failed')
                    ORDER BY d.accepted_at, d.event_id LIMIT 1) n
             )
             UPDATE deliveries d SET updated_at = now(),
                    next_attempt_at = CASE WHEN d.created_at + make_interval(secs => $3) <= now()
                                           THEN now() + make_interval(secs => $2)
                                           ELSE d.created_at + make_interval(secs => $3) END
             FROM next WHERE d.id = next.id
             RETURNING d.id, d.endpoint_id, d.attempts, d.created_at + make_interval(secs => $3) <= now()"#
        ))
        .bind(endpoint_ids)
        .bind(unsent_lease.as_secs_f64())
        .bind(ORDERING_SETTLE_SECS)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(heads
            .into_iter()
            .filter(|h| h.3)
            .map(|(id, endpoint_id, attempts, _)| NewDelivery { id, endpoint_id, attempts })
            .collect())
    }

    /// Ordered endpoints with held deliveries and no head (their head finished
    /// while its dispatcher died, a recover job made old deliveries pending): the
    /// scheduler's sweep advances them.
    pub async fn stalled_ordered_endpoints(&self) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT e.id FROM endpoints e
             WHERE e.ordering = 'strict' AND NOT e.paused AND NOT e.disabled AND e.deleted_at IS NULL
               AND EXISTS (SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id AND d.accepted_at IS NOT NULL
                             AND d.status IN ('pending', 'failed') AND d.next_attempt_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM deliveries h WHERE h.endpoint_id = e.id AND ",
            is_head!(),
            ")
             LIMIT 1000",
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pauses an ordered endpoint whose head is dying (`on_dead: stop`), naming
    /// it, with its audit entry. The sender does this before it records the dead
    /// attempt, so no moment exists in which the head is dead and the endpoint
    /// runs on: killed in between, the head is held on the paused endpoint and
    /// goes once more when someone resumes it. Returns the reason when it paused it.
    pub async fn stop_ordered(&self, endpoint_id: Uuid, dead: Uuid) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let stopped: Option<(Uuid, String)> = sqlx::query_as(
            "UPDATE endpoints SET paused = true, paused_at = now(), updated_at = now(),
                    paused_reason = 'delivery ' || $2::text || ' died at the head of the order (on_dead: stop)'
             WHERE id = $1 AND NOT paused
             RETURNING tenant_id, paused_reason",
        )
        .bind(endpoint_id)
        .bind(dead)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((tenant_id, _)) = &stopped {
            let tenant_id = *tenant_id;
            let details = json!({ "reason": "on_dead: stop", "delivery": dead });
            super::audit::record_target_in(
                &mut tx,
                &Actor::hookrelay(),
                action::ENDPOINT_PAUSED,
                Some(tenant_id),
                Some(endpoint_id),
                details,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(stopped.map(|(_, reason)| reason))
    }

    /// Releases a resumed endpoint's held deliveries: due oldest first, spaced at
    /// its rate limit (sent concurrently within its limits; strictly in order only
    /// on an ordered endpoint). Returns the first of them for the caller to
    /// publish (each due `PUBLISH_FALLBACK_SECS` later should that publish fail). An ordered
    /// endpoint's deliveries stay held: its order moves on from its oldest.
    pub(super) async fn release_held(
        tx: &mut sqlx::PgConnection,
        endpoint_id: Uuid,
    ) -> Result<Vec<NewDelivery>> {
        Ok(sqlx::query_as(
            "WITH ep AS (
                SELECT id, ordering,
                       CASE WHEN rate_limit_per_second > 0 THEN 1.0 / rate_limit_per_second ELSE $3 END AS spacing
                FROM endpoints WHERE id = $1
             ), held AS (
                SELECT d.id, row_number() OVER (ORDER BY d.id) - 1 AS k
                FROM deliveries d
                WHERE d.endpoint_id = $1 AND d.next_attempt_at IS NULL AND d.status IN ('pending', 'failed')
                  AND (d.accepted_at IS NULL OR (SELECT ordering FROM endpoints WHERE id = $1) = 'none')
             )
             UPDATE deliveries d SET updated_at = now(),
                    -- Ordering switched off: out of the order for good, so switching
                    -- it on again does not make each of them a head.
                    accepted_at = CASE WHEN ep.ordering = 'none' THEN NULL ELSE d.accepted_at END,
                    next_attempt_at = CASE WHEN held.k < $4 AND held.k * ep.spacing < $5
                                           THEN now() + make_interval(secs => $2)
                                           ELSE now() + make_interval(secs => held.k * ep.spacing) END
             FROM held, ep WHERE d.id = held.id
             RETURNING d.id, d.endpoint_id, d.attempts, held.k < $4 AND held.k * ep.spacing < $5 AS now",
        )
        .bind(endpoint_id)
        .bind(PUBLISH_FALLBACK_SECS)
        .bind(UNLIMITED_SPACING_SECS)
        .bind(RELEASED_AT_ONCE)
        .bind(RELEASED_WITHIN_SECS)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .filter(|r: &ReleasedRow| r.now)
        .map(|r| NewDelivery { id: r.id, endpoint_id: r.endpoint_id, attempts: r.attempts })
        .collect())
    }

    /// Cancels held deliveries of an endpoint being disabled or deleted (the others
    /// are cancelled when a sender next claims them).
    pub(super) async fn cancel_held(tx: &mut sqlx::PgConnection, endpoint_id: Uuid) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', last_error = 'endpoint deleted or disabled', updated_at = now()
             WHERE endpoint_id = $1 AND next_attempt_at IS NULL AND status IN ('pending', 'failed')",
        )
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Cancels one of a tenant's deliveries that is not delivered yet (in flight,
    /// it stays cancelled unless that attempt delivers it). `None`: no such delivery.
    pub async fn cancel_delivery(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        by: &Actor,
    ) -> Result<Option<Cancelled>> {
        let done: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(audited(
            concat!(
                "UPDATE deliveries SET ",
                cancel_set!(),
                " WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'failed')
             RETURNING endpoint_id, tenant_id, id"
            ),
            4,
            "changed.tenant_id",
            "changed.id",
        )))
        .bind(tenant_id)
        .bind(id)
        .bind(&by.name)
        .bind(Pending::new(by, action::DELIVERY_CANCELLED, json!({})))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(endpoint_id) = done {
            return Ok(Some(Cancelled::Now { endpoint_id }));
        }
        let status: Option<DeliveryStatus> =
            sqlx::query_scalar("SELECT status FROM deliveries WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(status.map(Cancelled::Final))
    }

    /// Cancels every undelivered delivery of one of a tenant's events; returns the
    /// endpoints it cancelled some for (one audit entry, with the count).
    pub async fn cancel_event_deliveries(
        &self,
        tenant_id: Uuid,
        event_id: Uuid,
        by: &Actor,
    ) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(audited_count(
            concat!(
                "UPDATE deliveries SET ",
                cancel_set!(),
                " WHERE tenant_id = $1 AND event_id = $2 AND status IN ('pending', 'failed')
             RETURNING endpoint_id"
            ),
            4,
            "$1",
        )))
        .bind(tenant_id)
        .bind(event_id)
        .bind(&by.name)
        .bind(Pending::new(
            by,
            action::EVENT_CANCELLED,
            json!({ "event": event_id }),
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// One endpoint's waiting deliveries and its head.
    pub async fn endpoint_backlog(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<EndpointBacklog>> {
        Ok(sqlx::query_as(
            "SELECT e.id AS endpoint_id, e.paused,
                    (SELECT count(*) FROM deliveries d WHERE d.endpoint_id = e.id
                        AND d.next_attempt_at IS NULL AND d.status IN ('pending', 'failed')) AS waiting,
                    (SELECT min(d.created_at) FROM deliveries d WHERE d.endpoint_id = e.id
                        AND d.next_attempt_at IS NULL AND d.status IN ('pending', 'failed')) AS oldest_waiting_at,
                    h.id AS head, h.attempts AS head_attempts, h.next_attempt_at AS head_next_attempt_at,
                    h.accepted_at AS head_accepted_at
             FROM endpoints e
             LEFT JOIN LATERAL (
                SELECT d.id, d.attempts, d.next_attempt_at, d.accepted_at FROM deliveries d
                WHERE d.endpoint_id = e.id AND d.accepted_at IS NOT NULL AND d.status IN ('pending', 'failed')
                  AND d.next_attempt_at IS NOT NULL
                ORDER BY d.accepted_at, d.event_id LIMIT 1) h ON e.ordering = 'strict'
             WHERE e.tenant_id = $1 AND e.id = $2 AND e.deleted_at IS NULL",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The paused backlog and the oldest ordered head, fleet-wide.
    pub async fn held_numbers(&self) -> Result<HeldNumbers> {
        Ok(sqlx::query_as(
            "SELECT
                (SELECT count(*) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                 WHERE e.paused AND d.next_attempt_at IS NULL AND d.status IN ('pending', 'failed')) AS paused_backlog,
                coalesce((SELECT extract(epoch FROM now() - min(d.accepted_at))::float8
                          FROM endpoints e JOIN deliveries d ON d.endpoint_id = e.id
                          WHERE e.ordering = 'strict' AND d.accepted_at IS NOT NULL
                            AND d.status IN ('pending', 'failed') AND d.next_attempt_at IS NOT NULL), 0) AS oldest_head_seconds",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

#[derive(sqlx::FromRow)]
struct ReleasedRow {
    id: Uuid,
    endpoint_id: Uuid,
    attempts: i32,
    now: bool,
}
