//! Storing what became of a message's deliveries: parked ones get their due time
//! (database clock) and lose their claim, attempts are recorded, breaker
//! changes and endpoint health are saved, endpoints that answered 410 are disabled,
//! ordered endpoints whose head finished move on to the next in line, and the
//! operational events all of this raises are published.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::store::SendJob;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::notices::{DEAD_WINDOW, Gathered};
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
        let (mut healthy, mut failing) = (HashSet::new(), HashMap::<Uuid, i32>::new());
        let mut notices = Gathered::default();
        let mut endpoints = HashMap::new();
        let mut in_line = OrderedMoves::default();
        for (job, outcome) in outcomes {
            match outcome {
                Decision::Attempted { record, endpoint_gone } => {
                    in_line.note(&job, record.status);
                    if endpoint_gone {
                        gone.push(job.endpoint_id);
                    }
                    notices.attempted(&job, &record);
                    if record.counts_against_endpoint() {
                        *failing.entry(job.endpoint_id).or_default() += 1;
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
        self.stop_ordered(&in_line.stops, &endpoints, &mut notices)
            .await;
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
        self.report_circuits(endpoints.values(), &mut notices).await;
        self.note_health(healthy, failing, &mut notices).await;
        for endpoint in gone {
            let reason = format!(
                "the endpoint answered 410 Gone on {}",
                Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
            );
            match self.store.disable_endpoint(endpoint, &reason).await {
                Ok(Some(disabled)) => notices.disabled(disabled, reason),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, %endpoint, "could not disable a gone endpoint")
                }
            }
        }
        if matches!(recorded, Outcome::Done(())) {
            self.count_dead(&mut notices).await;
            self.notices.raise(notices.notices).await;
        }
        recorded
    }

    /// Pauses ordered endpoints whose head is dying and says `on_dead: stop`.
    async fn stop_ordered(
        &self,
        stops: &[(Uuid, Uuid)],
        jobs: &HashMap<Uuid, SendJob>,
        notices: &mut Gathered,
    ) {
        for &(endpoint, dead) in stops {
            match self.store.stop_ordered(endpoint, dead).await {
                Ok(Some(reason)) => {
                    if let Some(job) = jobs.get(&endpoint) {
                        notices.paused(job.tenant_id, endpoint, reason);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, %endpoint, "could not stop an ordered endpoint whose head died")
                }
            }
        }
    }

    /// Counts the dead deliveries per tenant window; a tenant crossing the
    /// threshold raises `dead_letters.growing`.
    async fn count_dead(&self, notices: &mut Gathered) {
        if notices.dead.is_empty() || self.dead_letters_growing == 0 {
            return;
        }
        let dead: Vec<(Uuid, i32)> = notices.dead.drain().collect();
        let threshold = i32::try_from(self.dead_letters_growing).unwrap_or(i32::MAX);
        match self.store.count_dead(&dead, DEAD_WINDOW, threshold).await {
            Ok(crossed) => notices.growing(crossed),
            Err(e) => tracing::warn!(error = %e, "could not count dead deliveries"),
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
    async fn note_health(
        &self,
        healthy: HashSet<Uuid>,
        failing: HashMap<Uuid, i32>,
        notices: &mut Gathered,
    ) {
        if healthy.is_empty() && failing.is_empty() {
            return;
        }
        let healthy: Vec<Uuid> = healthy.into_iter().collect();
        let failing: Vec<(Uuid, i32)> = failing.into_iter().collect();
        match self
            .store
            .note_health(
                &healthy,
                &failing,
                self.disable_failing_after,
                self.opens_after,
            )
            .await
        {
            Ok(changes) => {
                for s in &changes.disabled {
                    tracing::warn!(endpoint = %s.endpoint_id, "endpoint disabled: every attempt failed for too long");
                }
                notices.health(changes);
            }
            Err(e) => tracing::warn!(error = %e, "could not record endpoint health"),
        }
    }

    /// Saves breaker transitions of these jobs' endpoints, so the API can show them.
    async fn report_circuits(&self, jobs: impl Iterator<Item = &SendJob>, notices: &mut Gathered) {
        for job in jobs {
            let gate = self.gate_of(job);
            let Some(view) = gate.breaker.take_change() else {
                continue;
            };
            let (opened, reclosed) = (gate.breaker.take_opened(), gate.breaker.take_reclosed());
            notices.circuit(job, &view, opened, reclosed);
            if let Err(e) = self
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
