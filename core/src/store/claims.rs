//! The sender's claims: the open deliveries a message names, claimed and loaded
//! with what sending them needs in one statement, their payloads (small ones
//! inline, large ones after), and claims given up.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};
use crate::model::DeliveryStatus;

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
    /// The revision of its request options (headers, auth, TLS); 0: it never had any.
    pub request_rev: i32,
    /// Paused since routing: the delivery is held, not sent.
    pub paused: bool,
    /// The endpoint delivers in strict order.
    pub ordered: bool,
    /// This delivery takes its place in that order (it was routed while the
    /// endpoint was ordered, and not replayed by hand since).
    pub in_order: bool,
    /// With strict order, the head dying stops the endpoint (`on_dead: stop`).
    pub stop_on_dead: bool,
    /// The database's clock when the delivery was claimed: attempt times and retry
    /// times are reckoned from it, never from the dispatcher's own clock.
    pub loaded_at: DateTime<Utc>,
}

impl SendJob {
    /// The endpoint's own request timeout, when it sets one.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        let ms = u64::try_from(self.timeout_ms?).ok()?;
        Some(std::time::Duration::from_millis(ms))
    }

    /// Sent outside its endpoint's order: a replay by hand of an ordered endpoint's delivery.
    pub fn out_of_band(&self) -> bool {
        self.ordered && !self.in_order
    }

    /// Attempts made before this one.
    pub fn attempts_made(&self) -> u32 {
        u32::try_from(self.attempts).unwrap_or(0)
    }
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

impl Store {
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
                  -- Held (paused, or waiting its turn in an ordered endpoint): not sent.
                  AND d.next_attempt_at IS NOT NULL
                RETURNING d.id, d.status, d.attempts, d.created_at, d.event_id, d.endpoint_id, d.tenant_id,
                          d.accepted_at IS NOT NULL AS in_order
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
                    ep.rate_limit_per_second, ep.rate_limit_burst, ep.max_in_flight, ep.timeout_ms, ep.request_rev,
                    ep.paused, ep.ordering = 'strict' AS ordered, c.in_order, ep.on_dead = 'stop' AS stop_on_dead,
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
}
