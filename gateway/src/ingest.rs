//! Group commit for ingest: concurrent requests' events are published together, a
//! few broker messages per round instead of one per request, and each request is
//! answered once the message holding its events is confirmed. Under light load a
//! request is published at once; under heavy load batches grow while earlier
//! publishes await their confirms. A request's events always travel in one message,
//! so a batch request is accepted whole or not at all.

use std::collections::HashMap;
use std::sync::Arc;

use hookrelay_core::queue::{IngestEvent, IngestMessage, PublishError, Publisher};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

/// Events merged into one round of publishes, at most (one request may exceed it alone).
const MAX_EVENTS_PER_ROUND: usize = 1000;
/// Rounds awaiting their confirms at once.
const ROUNDS_IN_FLIGHT: usize = 4;

struct Pending {
    tenant_id: Uuid,
    events: Vec<IngestEvent>,
    done: oneshot::Sender<Result<(), PublishError>>,
}

#[derive(Clone)]
pub struct IngestBatcher {
    tx: mpsc::Sender<Pending>,
}

impl IngestBatcher {
    /// Starts the batching task; it ends when every handle is dropped.
    pub fn spawn(publisher: Arc<Publisher>) -> Self {
        let (tx, rx) = mpsc::channel(16 * 1024);
        tokio::spawn(run(publisher, rx));
        Self { tx }
    }

    /// Publishes one request's events; returns once the broker confirmed them.
    pub async fn submit(
        &self,
        tenant_id: Uuid,
        events: Vec<IngestEvent>,
    ) -> Result<(), PublishError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending {
                tenant_id,
                events,
                done,
            })
            .await
            .map_err(|_| PublishError::Unavailable("ingest is shutting down".into()))?;
        wait.await
            .unwrap_or_else(|_| Err(PublishError::Unavailable("ingest is shutting down".into())))
    }
}

async fn run(publisher: Arc<Publisher>, mut rx: mpsc::Receiver<Pending>) {
    let rounds = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
    loop {
        let Ok(permit) = rounds.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut size = first.events.len();
        let mut round = vec![first];
        while size < MAX_EVENTS_PER_ROUND {
            match rx.try_recv() {
                Ok(next) => {
                    size += next.events.len();
                    round.push(next);
                }
                Err(_) => break,
            }
        }
        let publisher = publisher.clone();
        tokio::spawn(async move {
            publish_round(&publisher, round).await;
            drop(permit);
        });
    }
}

/// Told whether the message holding a request's events was confirmed.
type Waiter = oneshot::Sender<Result<(), PublishError>>;

/// One message per tenant; every request learns the outcome of its own message.
async fn publish_round(publisher: &Publisher, round: Vec<Pending>) {
    let queue = publisher.topology().ingest_queue();
    let mut by_tenant: HashMap<Uuid, (Vec<IngestEvent>, Vec<Waiter>)> = HashMap::new();
    for p in round {
        let entry = by_tenant.entry(p.tenant_id).or_default();
        entry.0.extend(p.events);
        entry.1.push(p.done);
    }
    let mut messages = Vec::with_capacity(by_tenant.len());
    let mut waiters = Vec::with_capacity(by_tenant.len());
    for (tenant_id, (events, done)) in by_tenant {
        match serde_json::to_vec(&IngestMessage { tenant_id, events }) {
            Ok(body) => {
                messages.push((queue.clone(), body));
                waiters.push(done);
            }
            Err(e) => {
                for d in done {
                    let _ = d.send(Err(PublishError::Unavailable(format!("encoding: {e}"))));
                }
            }
        }
    }
    // All messages of a round are confirmed together: on failure every request of the
    // round gets a 503 and retries, which the event ids make harmless.
    let outcome = publisher.publish_all(&messages).await;
    for done in waiters.into_iter().flatten() {
        let _ = done.send(outcome.clone());
    }
}
