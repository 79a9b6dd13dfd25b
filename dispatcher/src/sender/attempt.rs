//! One attempt: within the endpoint's lane (rate limit, its fair share of request
//! slots, slow-request allowance, breaker) and its tenant's fair share, signed,
//! sent, and judged by the retry policy on the database's clock. A delivery that
//! would wait too long for any of these is parked without using an attempt.

use std::time::{Duration, Instant};

use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::retry::{AttemptResult, Verdict};
use hookrelay_core::store::SendJob;

use super::handoff::{SLOW_AFTER, SLOW_PARK, SlowWatch};
use super::{Outcome, Sender, to_chrono};
use crate::breaker::Permit;
use crate::client::{Outgoing, not_sent};
use crate::lanes::MAX_LANE_WAIT;
use tracing::Instrument as _;

impl Sender {
    /// One attempt, in a span of its own that joins the event's trace.
    pub(super) async fn attempt(&self, job: &SendJob, watch: &SlowWatch) -> Outcome {
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
        self.attempt_in_lane(job, watch).instrument(span).await
    }

    async fn attempt_in_lane(&self, job: &SendJob, watch: &SlowWatch) -> Outcome {
        let claimed = Instant::now();
        let lane = self.lane_of(job);
        let parked = |wait| Outcome::Parked {
            wait,
            spacing: lane.spacing(),
        };
        if lane.slow_full() {
            return parked(SLOW_PARK);
        }
        loop {
            match lane.admit() {
                Ok(()) => break,
                Err(wait) if wait <= MAX_LANE_WAIT => tokio::time::sleep(wait).await,
                Err(wait) => return parked(wait),
            }
        }
        // The endpoint's own cap parks; its and its tenant's fair shares are waited for.
        let Ok(_slot) = lane.slot().await else {
            return parked(MAX_LANE_WAIT);
        };
        let _share = counted_wait(lane.share_slot(), watch).await;
        let _tenant_share = counted_wait(self.lanes.tenant_slot(job.tenant_id), watch).await;
        let probe = match lane.breaker.permit() {
            Permit::Go => false,
            Permit::Probe => true,
            // Open: wait for the probe time without using an attempt.
            Permit::Wait(wait) => return parked(wait),
        };
        let timeout = job
            .timeout_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis);
        let (mut record, retry_after) = {
            let _permit = counted_wait(self.permits.acquire(), watch).await;
            // During a rotation's grace period the old secrets sign too.
            match lane.signing_keys(&job.secret_ciphertext, &job.previous_secrets, |c| {
                self.secret(c, job.endpoint_id)
            }) {
                Some(secrets) => {
                    let send = self.client.send(Outgoing {
                        delivery_id: job.delivery_id,
                        url: &job.url,
                        payload: &job.payload,
                        secrets: &secrets,
                        timeout,
                    });
                    tokio::pin!(send);
                    match tokio::time::timeout(SLOW_AFTER, &mut send).await {
                        Ok(done) => done,
                        Err(_) => {
                            let _lane = lane.slow_request();
                            let _message = watch.enter();
                            send.await
                        }
                    }
                }
                // Never send unsigned.
                None => (
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
        // 5xx or no answer counts against the endpoint; 4xx shows it is up.
        let failed = record.response_status.is_none_or(|s| s >= 500);
        lane.breaker.done(failed, probe);
        let result = AttemptResult {
            status: record.response_status.and_then(|s| u16::try_from(s).ok()),
            retry_after,
        };
        let verdict = self.retry.after_attempt(
            job.attempts as u32 + 1,
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
        Outcome::Attempted {
            record,
            endpoint_gone,
        }
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
