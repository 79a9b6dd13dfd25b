//! Storing what became of a message's deliveries: parked ones get their due time
//! (database clock) and lose their claim, attempts are recorded, breaker
//! changes and endpoint health are saved, endpoints that answered 410 are disabled.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use hookrelay_core::store::SendJob;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Decision, Outcomes, Sender};
use crate::db_retry;
use crate::outcome::Outcome;

impl Sender {
    pub(super) async fn conclude(
        &self,
        outcomes: Vec<(SendJob, Decision)>,
        cancel: &CancellationToken,
    ) -> Outcome {
        let mut records = Vec::with_capacity(outcomes.len());
        let mut gone = Vec::new();
        let mut parked: Vec<(Uuid, Duration)> = Vec::new();
        let mut queued: HashMap<Uuid, u32> = HashMap::new();
        let (mut healthy, mut failing) = (HashSet::new(), HashSet::new());
        let mut endpoints = HashMap::new();
        for (job, outcome) in outcomes {
            match outcome {
                Decision::Attempted { record, endpoint_gone } => {
                    if endpoint_gone {
                        gone.push(job.endpoint_id);
                    }
                    if record.counts_against_endpoint() {
                        failing.insert(job.endpoint_id);
                    } else if !healthy.contains(&job.endpoint_id)
                        && self.gate_of(&job).breaker.take_failing_mark()
                    {
                        // Only an endpoint with failures on record needs them cleared.
                        healthy.insert(job.endpoint_id);
                    }
                    self.metrics.attempt(
                        record.status_code(),
                        record.duration_ms,
                        record.status,
                        job.accepted_at,
                    );
                    records.push(record);
                }
                Decision::Parked { wait, spacing } => {
                    self.metrics.outcome(Outcomes::Parked, 1);
                    // Spread an endpoint's parked deliveries at its own pace.
                    let k = queued.entry(job.endpoint_id).or_default();
                    parked.push((job.delivery_id, wait + spacing * *k));
                    *k += 1;
                }
            }
            endpoints.entry(job.endpoint_id).or_insert(job);
        }
        if !parked.is_empty() {
            let park = || self.store.park(&parked);
            match db_retry::until_done("parking deliveries", cancel, park).await {
                Outcome::Done(()) => {}
                other => {
                    return other
                        .explain(|e| format!("the database refused to park its deliveries: {e}"));
                }
            }
        }
        if !parked.is_empty() || records.iter().any(|r| r.next_attempt_at.is_some()) {
            self.scheduler_wake.notify_one();
        }
        let recorded = self.records.record(records).await;
        self.report_circuits(endpoints.values()).await;
        self.note_health(healthy, failing).await;
        for endpoint in gone {
            let reason = format!(
                "the endpoint answered 410 Gone on {}",
                Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
            );
            if let Err(e) = self.store.disable_endpoint(endpoint, &reason).await {
                tracing::warn!(error = %e, %endpoint, "could not disable a gone endpoint");
            }
        }
        recorded
    }

    /// Tracks endpoints' runs of failures; one failing for too long is disabled.
    async fn note_health(&self, healthy: HashSet<Uuid>, failing: HashSet<Uuid>) {
        if healthy.is_empty() && failing.is_empty() {
            return;
        }
        let healthy: Vec<Uuid> = healthy.into_iter().collect();
        let failing: Vec<Uuid> = failing.into_iter().collect();
        match self
            .store
            .note_health(&healthy, &failing, self.disable_failing_after)
            .await
        {
            Ok(disabled) => {
                for endpoint in disabled {
                    tracing::warn!(%endpoint, "endpoint disabled: every attempt failed for too long");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not record endpoint health"),
        }
    }

    /// Saves breaker transitions of these jobs' endpoints, so the API can show them.
    async fn report_circuits(&self, jobs: impl Iterator<Item = &SendJob>) {
        for job in jobs {
            let gate = self.gate_of(job);
            if let Some(view) = gate.breaker.take_change()
                && let Err(e) = self
                    .store
                    .set_circuit(
                        job.endpoint_id,
                        view.state,
                        view.opened_at,
                        view.next_probe_at,
                    )
                    .await
            {
                tracing::warn!(error = %e, endpoint = %job.endpoint_id, "could not save the circuit state");
            }
        }
    }
}
