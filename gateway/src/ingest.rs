//! Group commit for ingest: concurrent requests' events are published together, a
//! few broker messages per round instead of one per request, and each request is
//! answered once the message holding its events is confirmed. Under light load a
//! request is published at once; under heavy load batches grow while earlier
//! publishes await their confirms. A request's events always travel in one message,
//! so a batch request is accepted whole or not at all.
//!
//! Memory is bounded in bytes: requests wait for room in a byte budget
//! (`HOOKRELAY_INGEST_BUFFER_BYTES`) before they join a round, a message merges
//! requests only up to `MAX_MESSAGE_BYTES` (a larger request travels alone), and
//! every message is confirmed on its own, so one the broker refuses (RabbitMQ 4
//! refuses messages over 16 MiB by default) fails only the requests in it.

use std::collections::HashMap;
use std::sync::Arc;

use hookrelay_core::queue::{IngestEvent, IngestLane, IngestMessage, PublishError, Publisher};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::lanes::LaneChooser;

/// Events merged into one round of publishes, at most (one request may exceed it alone).
const MAX_EVENTS_PER_ROUND: usize = 1000;
/// Rounds awaiting their confirms at once.
const ROUNDS_IN_FLIGHT: usize = 4;
/// Bytes of events one message merges from several requests, at most.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of events merged into one round, at most (one request may exceed it alone).
const MAX_ROUND_BYTES: usize = 2 * MAX_MESSAGE_BYTES;
/// What an event costs beyond its payload and type (ids, times, JSON punctuation).
const EVENT_OVERHEAD: usize = 160;

struct Pending {
    tenant_id: Uuid,
    events: Vec<IngestEvent>,
    bytes: usize,
    done: oneshot::Sender<Result<(), PublishError>>,
    /// Its share of the byte budget, given back when the request is answered.
    budget: OwnedSemaphorePermit,
}

#[derive(Clone)]
pub struct IngestBatcher {
    tx: mpsc::Sender<Pending>,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

/// The bytes a request's events take in a message, roughly.
fn size_of(events: &[IngestEvent]) -> usize {
    events
        .iter()
        .map(|e| {
            e.payload.get().len()
                + e.event_type.len()
                + e.idempotency_key.as_ref().map_or(0, String::len)
                + e.request_id.as_ref().map_or(0, String::len)
                + e.traceparent.as_ref().map_or(0, String::len)
                + EVENT_OVERHEAD
        })
        .sum()
}

impl IngestBatcher {
    /// Starts the batching task; it ends when every handle is dropped. At most
    /// `budget_bytes` of events wait for their confirm at once.
    /// `priority_rate` is `HOOKRELAY_TENANT_PRIORITY_RATE` (see `lanes`).
    pub fn spawn(publisher: Arc<Publisher>, budget_bytes: usize, priority_rate: u32) -> Self {
        let budget_bytes = budget_bytes.clamp(1, u32::MAX as usize);
        let (tx, rx) = mpsc::channel(16 * 1024);
        let lanes = LaneChooser::new(priority_rate, tokio::time::Instant::now());
        tokio::spawn(run(publisher, rx, lanes));
        Self {
            tx,
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
        }
    }

    /// Publishes one request's events; returns once the broker confirmed them.
    pub async fn submit(
        &self,
        tenant_id: Uuid,
        events: Vec<IngestEvent>,
    ) -> Result<(), PublishError> {
        let bytes = size_of(&events);
        let count = events.len() as u64;
        // A request larger than the whole budget waits until it has it all.
        let permits = bytes.min(self.budget_bytes) as u32;
        let budget = self
            .budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| PublishError::Unavailable("ingest is shutting down".into()))?;
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { tenant_id, events, bytes, done, budget })
            .await
            .map_err(|_| PublishError::Unavailable("ingest is shutting down".into()))?;
        let outcome = wait
            .await
            .unwrap_or_else(|_| Err(PublishError::Unavailable("ingest is shutting down".into())));
        if outcome.is_ok() {
            metrics::counter!(hookrelay_core::metrics::EVENTS_ACCEPTED).increment(count);
        }
        outcome
    }
}

async fn run(publisher: Arc<Publisher>, mut rx: mpsc::Receiver<Pending>, mut lanes: LaneChooser) {
    let rounds = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
    loop {
        let Ok(permit) = rounds.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let (mut count, mut bytes) = (first.events.len(), first.bytes);
        let mut round = vec![first];
        while count < MAX_EVENTS_PER_ROUND && bytes < MAX_ROUND_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    count += next.events.len();
                    bytes += next.bytes;
                    round.push(next);
                }
                Err(_) => break,
            }
        }
        let publisher = publisher.clone();
        let round = by_lane(&mut lanes, round);
        tokio::spawn(async move {
            publish_round(&publisher, round).await;
            drop(permit);
        });
    }
}

/// A round's requests grouped by tenant, each tenant with the lane its events take.
fn by_lane(lanes: &mut LaneChooser, round: Vec<Pending>) -> Vec<(Uuid, IngestLane, Vec<Pending>)> {
    let mut by_tenant: HashMap<Uuid, Vec<Pending>> = HashMap::new();
    for p in round {
        by_tenant.entry(p.tenant_id).or_default().push(p);
    }
    let now = tokio::time::Instant::now();
    by_tenant
        .into_iter()
        .map(|(tenant, requests)| {
            let events = requests.iter().map(|p| p.events.len()).sum();
            (tenant, lanes.choose(tenant, events, now), requests)
        })
        .collect()
}

/// Splits `items` in order into groups of at most `max` bytes each; an item larger
/// than `max` makes a group of its own (a request's events never split).
fn pack<T>(items: Vec<T>, size: impl Fn(&T) -> usize, max: usize) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item);
        match groups.last_mut() {
            Some(group) if bytes + n <= max => group.push(item),
            _ => {
                groups.push(vec![item]);
                bytes = 0;
            }
        }
        bytes += n;
    }
    groups
}

/// Told whether the message holding a request's events was confirmed.
type Waiter = oneshot::Sender<Result<(), PublishError>>;

/// One message per tenant (more when its requests exceed `MAX_MESSAGE_BYTES`);
/// every request learns the outcome of its own message.
async fn publish_round(publisher: &Publisher, round: Vec<(Uuid, IngestLane, Vec<Pending>)>) {
    let topology = publisher.topology();
    let mut messages = Vec::new();
    let mut waiters: Vec<Vec<Waiter>> = Vec::new();
    // Per message, its events if it goes to the bulk lane (for the metric).
    let mut bulk_events: Vec<u64> = Vec::new();
    // The budget is given back once every request of the round is answered.
    let mut budgets = Vec::new();
    for (tenant_id, lane, requests) in round {
        let queue = topology.ingest_lane(lane);
        for group in pack(requests, |p| p.bytes, MAX_MESSAGE_BYTES) {
            let mut events = Vec::new();
            let mut done = Vec::with_capacity(group.len());
            for p in group {
                events.extend(p.events);
                done.push(p.done);
                budgets.push(p.budget);
            }
            let count = events.len() as u64;
            match serde_json::to_vec(&IngestMessage { tenant_id, events }) {
                Ok(body) => {
                    messages.push((queue.clone(), body));
                    waiters.push(done);
                    bulk_events.push(if lane == IngestLane::Bulk { count } else { 0 });
                }
                Err(e) => {
                    for d in done {
                        let _ = d.send(Err(PublishError::Unavailable(format!("encoding: {e}"))));
                    }
                }
            }
        }
    }
    // Each message is confirmed on its own: a refused one fails only its requests,
    // which get a 503 and retry (the event ids make that harmless).
    let outcomes = publisher.publish_each(&messages).await;
    drop(messages);
    let bulk_confirmed: u64 = bulk_events
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(n, _)| n)
        .sum();
    if bulk_confirmed > 0 {
        metrics::counter!(hookrelay_core::metrics::EVENTS_BULK).increment(bulk_confirmed);
    }
    for (done, outcome) in waiters.into_iter().zip(outcomes) {
        for d in done {
            let _ = d.send(outcome.clone());
        }
    }
    drop(budgets);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_merge_requests_up_to_the_cap_and_a_large_one_goes_alone() {
        let mib = 1024 * 1024;
        let sizes = vec![mib, 2 * mib, mib, 9 * mib, 100, 3 * mib];
        let groups = pack(sizes, |n| *n, 4 * mib);
        assert_eq!(
            groups,
            vec![vec![mib, 2 * mib, mib], vec![9 * mib], vec![100, 3 * mib]]
        );
        assert!(pack(Vec::<usize>::new(), |n| *n, 4).is_empty());
    }

    #[test]
    fn a_requests_size_counts_its_payloads() {
        let event = IngestEvent {
            id: Uuid::nil(),
            event_type: "order.created".into(),
            payload: serde_json::value::RawValue::from_string(format!("\"{}\"", "x".repeat(998)))
                .expect("a JSON string"),
            idempotency_key: None,
            accepted_at: chrono::Utc::now(),
            request_id: None,
            traceparent: None,
            channels: None,
        };
        let n = size_of(std::slice::from_ref(&event));
        assert!((1000..1000 + 200).contains(&n), "{n}");
    }
}
