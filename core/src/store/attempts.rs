//! Attempts: the sender's records, written in one statement with their
//! deliveries' new state and the health rollup; and the API's reads of them.

use std::borrow::Borrow;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};
use crate::ids::new_id;
use crate::model::{Attempt, DeliveryStatus};

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
    /// Sent outside its ordered endpoint's order (a replay by hand).
    pub out_of_band: bool,
}

impl AttemptRecord {
    /// A `5xx` or no answer at all counts against the endpoint (its breaker, its
    /// health); a `4xx` shows it is up.
    pub fn counts_against_endpoint(&self) -> bool {
        self.response_status.is_none_or(|s| s >= 500)
    }

    /// The HTTP status the receiver answered, if it answered.
    pub fn status_code(&self) -> Option<u16> {
        self.response_status.and_then(|s| u16::try_from(s).ok())
    }
}

impl Store {
    /// Records attempts, moves their deliveries on and counts them in the per-minute
    /// health rollup, in one statement. A delivery
    /// already `delivered` stays delivered even if a duplicate send later failed.
    /// Each delivery may appear at most once per call.
    pub async fn record_attempts<R: Borrow<AttemptRecord>>(&self, records: &[R]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH input AS (
                SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[], $6::text[],
                                     $7::int4[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::bool[])
                  AS t(attempt_id, delivery_id, status, request_headers, response_status, response_body,
                       duration_ms, error, at, next_attempt_at, response_headers, out_of_band)
             ), upd AS (
                UPDATE deliveries d SET
                    attempts = d.attempts + 1,
                    -- Delivered stays delivered; cancelled by hand while in flight stays
                    -- cancelled unless this attempt delivered it.
                    status = CASE WHEN d.status = 'delivered' THEN d.status
                                  WHEN d.status = 'cancelled' AND i.status <> 'delivered' THEN d.status
                                  ELSE i.status END,
                    last_attempt_at = i.at,
                    last_response_status = i.response_status,
                    last_error = i.error,
                    delivered_at = CASE WHEN i.status = 'delivered' AND d.delivered_at IS NULL THEN i.at ELSE d.delivered_at END,
                    next_attempt_at = CASE WHEN d.status IN ('delivered', 'cancelled') THEN NULL ELSE i.next_attempt_at END,
                    claimed_until = NULL,
                    updated_at = now()
                FROM input i WHERE d.id = i.delivery_id
                  -- The ids again, as values: the plan then touches their days' partitions only.
                  AND d.id = ANY($2::uuid[])
                RETURNING d.id, d.attempts, d.endpoint_id
             ), logged AS (
                INSERT INTO attempts (id, delivery_id, attempt, request_headers, response_status, response_body,
                                      duration_ms, error, created_at, response_headers, out_of_band)
                SELECT i.attempt_id, i.delivery_id, upd.attempts, i.request_headers::jsonb, i.response_status,
                       i.response_body, i.duration_ms, i.error, i.at, i.response_headers::jsonb, i.out_of_band
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
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.delivery_id).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.status.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.request_headers.to_string()).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.response_status).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.response_body.as_deref()).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.duration_ms).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.error.as_deref()).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.at).collect::<Vec<_>>())
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.next_attempt_at).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(Borrow::borrow)
                .map(|r: &AttemptRecord| r.response_headers.as_ref().map(|h| h.to_string()))
                .collect::<Vec<_>>(),
        )
        .bind(records.iter().map(Borrow::borrow).map(|r: &AttemptRecord| r.out_of_band).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
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
                    a.response_body, a.duration_ms, a.error, a.out_of_band, a.created_at
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
