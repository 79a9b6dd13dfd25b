//! One attempt: through the endpoint's gate (rate limit, its fair share of request
//! slots, slow-request allowance, breaker) and its tenant's fair share, signed,
//! sent, and judged by the retry policy on the database's clock. A delivery that
//! would wait too long for any of these is parked without using an attempt.

use std::time::Instant;

use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::retry::{AttemptResult, Verdict};
use hookrelay_core::store::SendJob;
use hookrelay_core::time::to_chrono;

use super::handoff::{SLOW_AFTER, SLOW_PARK, SlowWatch};
use super::{Decision, Sender};
use crate::admission::{MAX_GATE_WAIT, OwnSlot};
use crate::breaker::Permit;
use crate::client::{Outgoing, not_sent};

/// A retry that finds every retry slot taken waits this long, plus up to as
/// much again at random, so a storm of them comes back spread out.
const RETRY_SLOTS_FULL: std::time::Duration = std::time::Duration::from_secs(1);
use tracing::Instrument as _;

impl Sender {
    /// One attempt, in a span of its own that joins the event's trace.
    pub(super) async fn attempt(&self, job: &SendJob, watch: &SlowWatch) -> Decision {
        let span = tracing::debug_span!(
            "attempt",
            delivery = %job.delivery_id,
            endpoint = %job.endpoint_id,
            tenant = %job.tenant_id,
            event = %job.event_id,
            attempt = job.attempts + 1,
        );
        if let Some(tp) = job.traceparent.as_deref() {
            hookrelay_core::telemetry::continue_from(&span, tp);
        }
        self.attempt_through_gate(job, watch).instrument(span).await
    }

    async fn attempt_through_gate(&self, job: &SendJob, watch: &SlowWatch) -> Decision {
        let claimed = Instant::now();
        let gate = self.gate_of(job);
        let parked = |wait| Decision::Parked { wait, spacing: gate.spacing() };
        if gate.slow_full() {
            return parked(SLOW_PARK);
        }
        loop {
            match gate.admit() {
                Ok(()) => break,
                Err(wait) if wait <= MAX_GATE_WAIT => tokio::time::sleep(wait).await,
                Err(wait) => return parked(wait),
            }
        }
        // The endpoint's own cap parks; its and its tenant's fair shares are waited for.
        let _slot = match gate.own_slot().await {
            OwnSlot::Full => return parked(MAX_GATE_WAIT),
            slot => slot,
        };
        // A retry holds one of the retries' slots too, so the first attempts' share
        // stays free for fresh events; with none free it goes back to wait, rather
        // than queue in memory ahead of fresh events.
        let _retry_slot = if job.attempts_made() > 0 {
            match self.retry_permits.try_acquire() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    self.metrics.retry_held_back();
                    return parked(RETRY_SLOTS_FULL + RETRY_SLOTS_FULL.mul_f64(rand::random()));
                }
            }
        } else {
            None
        };
        let _share = counted_wait(gate.share_slot(), watch).await;
        let _tenant_share = counted_wait(self.admission.tenant_slot(job.tenant_id), watch).await;
        let probe = match gate.breaker.permit() {
            Permit::Go => false,
            Permit::Probe => true,
            // Open: wait for the probe time without using an attempt.
            Permit::Wait(wait) => return parked(wait),
        };
        let timeout = job.timeout();
        let (mut record, retry_after) = {
            let _permit = counted_wait(self.permits.acquire(), watch).await;
            // During a rotation's grace period the old secrets sign too.
            let decrypt = |c: &[u8]| self.secret(c, job.endpoint_id);
            let (current, previous) = (&job.secret_ciphertext, &job.previous_secrets);
            let profile = self
                .profiles
                .get(job.endpoint_id, job.request_rev, |tls, key| {
                    self.client.for_tls(tls, key)
                })
                .await;
            match (
                self.signing_keys
                    .get(job.endpoint_id, current, previous, decrypt),
                profile,
            ) {
                (_, Err(e)) => (not_sent(job.delivery_id, &e.to_string()), None),
                (Some(secrets), Ok(profile)) => {
                    let send = self.client.send(Outgoing {
                        delivery_id: job.delivery_id,
                        url: &job.url,
                        payload: &job.payload,
                        secrets: &secrets,
                        timeout,
                        profile: profile.as_deref(),
                    });
                    tokio::pin!(send);
                    match tokio::time::timeout(SLOW_AFTER, &mut send).await {
                        Ok(done) => done,
                        Err(_) => {
                            let _slow = gate.slow_request();
                            let _message = watch.enter();
                            send.await
                        }
                    }
                }
                // Never send unsigned.
                (None, Ok(_)) => (
                    not_sent(
                        job.delivery_id,
                        "endpoint secret cannot be decrypted with the configured key",
                    ),
                    None,
                ),
            }
        };
        // The attempt's time on the database's clock: when it was claimed plus how
        // long this took. A dispatcher whose own clock is off changes no due time.
        let now = job.loaded_at + to_chrono(claimed.elapsed());
        record.at = now;
        record.out_of_band = job.out_of_band();
        let failed = record.counts_against_endpoint();
        gate.breaker.done(failed, probe);
        let result = AttemptResult { status: record.status_code(), retry_after };
        let verdict = self.retry.after_attempt(
            job.attempts_made() + 1,
            job.routed_at,
            result,
            now,
            rand::random(),
        );
        let mut endpoint_gone = false;
        match verdict {
            Verdict::Delivered => record.status = DeliveryStatus::Delivered,
            Verdict::RetryAt(at) => {
                record.status = DeliveryStatus::Failed;
                record.next_attempt_at = Some(at);
            }
            Verdict::Dead(reason) => {
                record.status = DeliveryStatus::Dead;
                record.error = Some(join(record.error.take(), &reason));
            }
            Verdict::Gone => {
                record.status = DeliveryStatus::Dead;
                record.error = Some(join(
                    record.error.take(),
                    "endpoint gone (410); it is now disabled",
                ));
                endpoint_gone = true;
            }
        }
        Decision::Attempted { record, endpoint_gone }
    }
}

/// Waits for a request slot; a wait longer than `SLOW_AFTER` counts as slow, so the
/// message lets go of this delivery rather than wait behind other endpoints' requests.
async fn counted_wait<T>(slot: impl Future<Output = T>, watch: &SlowWatch) -> T {
    tokio::pin!(slot);
    match tokio::time::timeout(SLOW_AFTER, &mut slot).await {
        Ok(got) => got,
        Err(_) => {
            let _waiting = watch.enter();
            slot.await
        }
    }
}

fn join(error: Option<String>, reason: &str) -> String {
    match error {
        Some(e) => format!("{e}; {reason}"),
        None => reason.to_string(),
    }
}
