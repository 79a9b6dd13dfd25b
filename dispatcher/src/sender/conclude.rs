//! Storing what became of a message's deliveries: parked ones get their due time
//! (database clock) and lose their claim, attempts are recorded, breaker
//! changes and endpoint health are saved, endpoints that answered 410 are disabled,
//! ordered endpoints whose head finished move on to the next in line.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use hookrelay_core::model::DeliveryStatus;
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
        let mut in_line = OrderedMoves::default();
        for (job, outcome) in outcomes {
            match outcome {
                Decision::Attempted { record, endpoint_gone } => {
                    in_line.note(&job, record.status);
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
        // An ordered endpoint whose head dies with `on_dead: stop` is paused before
        // the attempt is recorded, so no sweep ever finds it dead and running.
        self.stop_ordered(&in_line.stops).await;
        let due_later = !parked.is_empty() || records.iter().any(|r| r.next_attempt_at.is_some());
        let recorded = self.records.record(records).await;
        // Once the due times are written: woken before, the scheduler would find
        // none and sleep its full round.
        if due_later {
            self.scheduler_wake.notify_one();
        }
        if matches!(recorded, Outcome::Done(())) {
            self.move_ordered_on(in_line.advance).await;
        }
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

    /// Pauses ordered endpoints whose head is dying and says `on_dead: stop`.
    async fn stop_ordered(&self, stops: &[(Uuid, Uuid)]) {
        for &(endpoint, dead) in stops {
            if let Err(e) = self.store.stop_ordered(endpoint, dead).await {
                tracing::warn!(error = %e, %endpoint, "could not stop an ordered endpoint whose head died");
            }
        }
    }

    /// Ordered endpoints whose head had an attempt: once it is no longer the head
    /// (delivered, dead, or cancelled while in flight), the next in line goes,
    /// published now. A failure here only delays them: the scheduler's sweep
    /// moves stalled orders on.
    async fn move_ordered_on(&self, advance: HashSet<Uuid>) {
        if advance.is_empty() {
            return;
        }
        let advance: Vec<Uuid> = advance.into_iter().collect();
        match self
            .store
            .advance_ordered(&advance, self.unsent_after)
            .await
        {
            Ok(heads) => self.publisher.send_now(&heads).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not move ordered endpoints on; the sweep will")
            }
        }
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

/// What attempted heads of ordered endpoints ask for.
#[derive(Default)]
struct OrderedMoves {
    /// Endpoints whose head was attempted: the next one goes if it is done (a
    /// failed head cancelled in flight is done too, which only the store knows).
    advance: HashSet<Uuid>,
    /// Endpoints to pause, and the head that died.
    stops: Vec<(Uuid, Uuid)>,
}

impl OrderedMoves {
    fn note(&mut self, job: &SendJob, status: DeliveryStatus) {
        if !job.ordered || !job.in_order {
            return;
        }
        if status == DeliveryStatus::Dead && job.stop_on_dead {
            self.stops.push((job.endpoint_id, job.delivery_id));
        } else {
            self.advance.insert(job.endpoint_id);
        }
    }
}
