//! Deliveries and attempts: the sender's batched claims and attempt recording, the
//! scheduler's due rows, and the API's reads. The router's write is `routing`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};
use crate::ids::new_id;
use crate::model::{Attempt, Delivery, DeliveryStatus};

pub(super) const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.endpoint_id, d.tenant_id, e.event_type, d.status, d.attempts,
    d.next_attempt_at, d.last_attempt_at, d.last_response_status, d.last_error, d.delivered_at, d.created_at, d.updated_at";

/// A delivery to publish: where it goes, and its attempt count at this decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct NewDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub attempts: i32,
}

/// Everything the sender needs for one delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SendJob {
    pub delivery_id: Uuid,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// When the delivery was routed: retries stop at the policy's maximum age from here.
    pub routed_at: DateTime<Utc>,
    /// When the gateway accepted the event.
    pub accepted_at: DateTime<Utc>,
    /// The event's trace, when spans are exported: the attempt joins it.
    pub traceparent: Option<String>,
    pub event_id: Uuid,
    pub event_type: String,
    /// The event's payload, shared by every delivery of the event in one load.
    #[sqlx(skip)]
    pub payload: std::sync::Arc<str>,
    pub endpoint_id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub secret_ciphertext: Vec<u8>,
    /// Secrets rotated out whose grace period lasts: they sign too.
    pub previous_secrets: Vec<Vec<u8>>,
    /// Deleted or disabled since routing.
    pub endpoint_inactive: bool,
    pub rate_limit_per_second: Option<i32>,
    pub rate_limit_burst: Option<i32>,
    pub max_in_flight: Option<i32>,
    pub timeout_ms: Option<i32>,
    /// The database's clock when the delivery was claimed: attempt times and retry
    /// times are reckoned from it, never from the dispatcher's own clock.
    pub loaded_at: DateTime<Utc>,
}

/// A claimed delivery as the claim statement returns it: the payload's size and
/// (when small) the payload itself only on the first delivery of each event, so a
/// fan-out to 500 endpoints loads it once.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    job: SendJob,
    payload: Option<String>,
    payload_bytes: Option<i32>,
}

/// Payloads up to this size come with the claim; larger ones are loaded after the
/// sender has room for them in its byte budget (`Claimed::large`).
pub const INLINE_PAYLOAD_BYTES: i32 = 16 * 1024;

/// What a claim gave: the jobs (payloads still to attach) and the events' payloads.
#[derive(Debug, Default)]
pub struct Claimed {
    pub jobs: Vec<SendJob>,
    /// Payloads that came with the claim, by event.
    pub payloads: HashMap<Uuid, std::sync::Arc<str>>,
    /// Events whose payload is larger than `INLINE_PAYLOAD_BYTES`, with its size.
    pub large: Vec<(Uuid, usize)>,
}

impl Claimed {
    /// The bytes these jobs' payloads take, each event's once.
    pub fn payload_bytes(&self) -> usize {
        self.payloads.values().map(|p| p.len()).sum::<usize>()
            + self.large.iter().map(|(_, n)| n).sum::<usize>()
    }

    /// The jobs with their payloads; `more` holds the large ones, loaded since.
    pub fn into_jobs(mut self, more: Vec<(Uuid, String)>) -> Vec<SendJob> {
        for (id, payload) in more {
            self.payloads.insert(id, std::sync::Arc::from(payload));
        }
        for job in &mut self.jobs {
            if let Some(p) = self.payloads.get(&job.event_id) {
                job.payload = p.clone();
            }
        }
        self.jobs
    }
}

/// The outcome of one attempt, as the sender reports it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: Uuid,
    /// `Delivered`, `Failed` (a retry is due at `next_attempt_at`) or `Dead`.
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub request_headers: serde_json::Value,
    pub response_status: Option<i32>,
    pub response_headers: Option<serde_json::Value>,
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
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

    /// Claims the open deliveries among `delivery_ids` for `claim_for` and loads
    /// what sending them needs, in one statement. A delivery someone else holds a
    /// live claim on is left out, as is one already finished: however many messages
    /// name a delivery, one sender at a time sends it. The claim ends when its
    /// attempt is recorded or it is parked; a sender that dies lets it lapse.
    ///
    /// `attempts`, when the message carries it, is each delivery's attempt count at
    /// the decision the message stands for: a delivery attempted since is left out.
    pub async fn claim_jobs(
        &self,
        delivery_ids: &[Uuid],
        attempts: Option<&[i32]>,
        claim_for: std::time::Duration,
    ) -> Result<Claimed> {
        let rows: Vec<ClaimedRow> = sqlx::query_as(
            "WITH claimed AS (
                UPDATE deliveries d SET claimed_until = now() + make_interval(secs => $2)
                WHERE d.id = ANY($1) AND d.status IN ('pending', 'failed')
                  AND (d.claimed_until IS NULL OR d.claimed_until < now())
                RETURNING d.id, d.status, d.attempts, d.created_at, d.event_id, d.endpoint_id, d.tenant_id
             )
             SELECT c.id AS delivery_id, c.status, c.attempts, c.created_at AS routed_at, e.created_at AS accepted_at,
                    e.traceparent,
                    c.event_id, e.event_type,
                    CASE WHEN row_number() OVER w = 1 AND octet_length(e.payload) <= $3 THEN e.payload END AS payload,
                    CASE WHEN row_number() OVER w = 1 THEN octet_length(e.payload) END AS payload_bytes,
                    c.endpoint_id, c.tenant_id, ep.url, ep.secret_ciphertext,
                    ARRAY(SELECT u.secret FROM unnest(ep.previous_secrets, ep.previous_secrets_expire_at)
                              AS u(secret, expires_at) WHERE u.expires_at > now()) AS previous_secrets,
                    (ep.deleted_at IS NOT NULL OR ep.disabled) AS endpoint_inactive,
                    ep.rate_limit_per_second, ep.rate_limit_burst, ep.max_in_flight, ep.timeout_ms,
                    now() AS loaded_at
             FROM claimed c
             JOIN events e ON e.id = c.event_id
             JOIN endpoints ep ON ep.id = c.endpoint_id
             WINDOW w AS (PARTITION BY c.event_id ORDER BY c.id)",
        )
        .bind(delivery_ids)
        .bind(claim_for.as_secs_f64())
        .bind(INLINE_PAYLOAD_BYTES)
        .fetch_all(&self.pool)
        .await?;
        // Attempted since the message's decision: not this message's to send. Rare
        // (a redelivered message), so checked here rather than in every claim.
        let decided: Option<HashMap<Uuid, i32>> =
            attempts.filter(|a| a.len() == delivery_ids.len()).map(|a| {
                delivery_ids
                    .iter()
                    .copied()
                    .zip(a.iter().copied())
                    .collect()
            });
        let mut claimed = Claimed {
            jobs: Vec::with_capacity(rows.len()),
            ..Claimed::default()
        };
        let mut stale = Vec::new();
        for row in rows {
            // The payload rides on the event's first row, which may be a stale one.
            match (row.payload, row.payload_bytes) {
                (Some(p), _) => {
                    claimed
                        .payloads
                        .insert(row.job.event_id, std::sync::Arc::from(p));
                }
                (None, Some(n)) => claimed.large.push((row.job.event_id, n.max(0) as usize)),
                (None, None) => {}
            }
            match &decided {
                Some(d) if d.get(&row.job.delivery_id) != Some(&row.job.attempts) => {
                    stale.push(row.job.delivery_id);
                }
                _ => claimed.jobs.push(row.job),
            }
        }
        if !stale.is_empty() {
            self.release_claims(&stale).await?;
        }
        if claimed.jobs.len() < delivery_ids.len() {
            // Some are finished, or another sender holds them: should that sender be
            // dead, its deliveries fall due as soon as its claim lapses.
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at = claimed_until
                 WHERE id = ANY($1) AND status IN ('pending', 'failed')
                   AND claimed_until >= now() AND next_attempt_at > claimed_until",
            )
            .bind(delivery_ids)
            .execute(&self.pool)
            .await?;
        }
        Ok(claimed)
    }

    /// Events' payloads by id (the large ones a claim left out).
    pub async fn event_payloads(&self, event_ids: &[Uuid]) -> Result<Vec<(Uuid, String)>> {
        Ok(
            sqlx::query_as("SELECT id, payload FROM events WHERE id = ANY($1)")
                .bind(event_ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Gives up claims without an attempt (the sender could not finish them).
    pub async fn release_claims(&self, delivery_ids: &[Uuid]) -> Result<()> {
        sqlx::query("UPDATE deliveries SET claimed_until = NULL WHERE id = ANY($1) AND claimed_until IS NOT NULL")
            .bind(delivery_ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records attempts, moves their deliveries on and counts them in the per-minute
    /// health rollup, in one statement. A delivery
    /// already `delivered` stays delivered even if a duplicate send later failed.
    /// Each delivery may appear at most once per call.
    pub async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH input AS (
                SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[], $6::text[],
                                     $7::int4[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::text[])
                  AS t(attempt_id, delivery_id, status, request_headers, response_status, response_body,
                       duration_ms, error, at, next_attempt_at, response_headers)
             ), upd AS (
                UPDATE deliveries d SET
                    attempts = d.attempts + 1,
                    status = CASE WHEN d.status = 'delivered' THEN d.status ELSE i.status END,
                    last_attempt_at = i.at,
                    last_response_status = i.response_status,
                    last_error = i.error,
                    delivered_at = CASE WHEN i.status = 'delivered' AND d.delivered_at IS NULL THEN i.at ELSE d.delivered_at END,
                    next_attempt_at = CASE WHEN d.status = 'delivered' THEN NULL ELSE i.next_attempt_at END,
                    claimed_until = NULL,
                    updated_at = now()
                FROM input i WHERE d.id = i.delivery_id
                  -- The ids again, as values: the plan then touches their days' partitions only.
                  AND d.id = ANY($2::uuid[])
                RETURNING d.id, d.attempts, d.endpoint_id
             ), logged AS (
                INSERT INTO attempts (id, delivery_id, attempt, request_headers, response_status, response_body,
                                      duration_ms, error, created_at, response_headers)
                SELECT i.attempt_id, i.delivery_id, upd.attempts, i.request_headers::jsonb, i.response_status,
                       i.response_body, i.duration_ms, i.error, i.at, i.response_headers::jsonb
                FROM input i JOIN upd ON upd.id = i.delivery_id
             ), tallied AS (
                SELECT upd.endpoint_id, date_trunc('minute', i.at) AS minute,
                       i.response_status BETWEEN 200 AND 299 AS ok,
                       i.status = 'dead' AS dead,
                       width_bucket(i.duration_ms, ARRAY[25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]) AS bucket,
                       coalesce(i.error, 'HTTP ' || i.response_status) AS problem, i.at
                FROM input i JOIN upd ON upd.id = i.delivery_id
             )
             -- The console's per-minute health rollup; sorted so concurrent writers lock alike.
             INSERT INTO endpoint_health_minutes AS m (endpoint_id, minute, ok, total, dead, latency, last_error, last_error_at)
             SELECT endpoint_id, minute, count(*) FILTER (WHERE ok), count(*), count(*) FILTER (WHERE dead),
                    ARRAY[count(*) FILTER (WHERE bucket = 0), count(*) FILTER (WHERE bucket = 1),
                          count(*) FILTER (WHERE bucket = 2), count(*) FILTER (WHERE bucket = 3),
                          count(*) FILTER (WHERE bucket = 4), count(*) FILTER (WHERE bucket = 5),
                          count(*) FILTER (WHERE bucket = 6), count(*) FILTER (WHERE bucket = 7),
                          count(*) FILTER (WHERE bucket = 8), count(*) FILTER (WHERE bucket = 9),
                          count(*) FILTER (WHERE bucket = 10), count(*) FILTER (WHERE bucket = 11)]::int4[],
                    (array_agg(problem ORDER BY at DESC) FILTER (WHERE ok IS NOT TRUE))[1],
                    max(at) FILTER (WHERE ok IS NOT TRUE)
             FROM tallied GROUP BY endpoint_id, minute ORDER BY endpoint_id, minute
             ON CONFLICT (endpoint_id, minute) DO UPDATE SET
                ok = m.ok + excluded.ok,
                total = m.total + excluded.total,
                dead = m.dead + excluded.dead,
                latency = ARRAY(SELECT a + b FROM unnest(m.latency, excluded.latency) WITH ORDINALITY AS t(a, b, k) ORDER BY k),
                last_error = CASE WHEN excluded.last_error_at >= m.last_error_at OR m.last_error_at IS NULL
                                  THEN coalesce(excluded.last_error, m.last_error) ELSE m.last_error END,
                last_error_at = greatest(m.last_error_at, excluded.last_error_at)",
        )
        .bind(records.iter().map(|_| new_id()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.delivery_id).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.request_headers.to_string()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.response_status).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.response_body.as_deref()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(|r| r.response_headers.as_ref().map(|h| h.to_string()))
                .collect::<Vec<_>>(),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
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

    /// Every attempt of a tenant's delivery, oldest first.
    /// Every attempt of a delivery, oldest first (the console's and the operator's
    /// views; a delivery has at most the retry schedule's attempts plus replays).
    pub async fn all_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        self.list_attempts(tenant_id, delivery_id, 10_000, None)
            .await
    }

    /// Up to `limit` + 1 of a delivery's attempts after `after`, oldest first (by
    /// their time-ordered ids), so the caller can tell whether more follow.
    pub async fn list_attempts(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<Attempt>> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.delivery_id, a.attempt, a.request_headers, a.response_status, a.response_headers,
                    a.response_body, a.duration_ms, a.error, a.created_at
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE d.tenant_id = $1 AND a.delivery_id = $2 AND ($4::uuid IS NULL OR a.id > $4)
             ORDER BY a.id LIMIT $3 + 1",
        )
        .bind(tenant_id)
        .bind(delivery_id)
        .bind(limit)
        .bind(after)
        .fetch_all(&self.pool)
        .await?)
    }
}
