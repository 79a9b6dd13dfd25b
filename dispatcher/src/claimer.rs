//! Batches the senders' claims from every shard into single statements: a claim
//! waiting while another is in flight joins the next one, so the database plans,
//! runs and commits one claim per round instead of one per message, and the
//! claims' cost follows the load, not the count of small messages.
//!
//! Each message still gets exactly its own deliveries back. A batch the database
//! refuses for good is claimed again one message at a time, so only the message at
//! fault is refused; while the database is away, a message whose shard is stopping
//! gives up its place (it is requeued), as it would claiming alone.
//!
//! Deliveries of the bulk ingest lane (a tenant far above its share) are claimed
//! by a worker of their own: their batches never hold anyone else's claim, and one
//! worker keeps the bulk lane to one claim statement at a time. While bulk claims
//! come fast, that worker waits a little for more (`BatchWindow::statements`), so
//! the bulk lane's deliveries cost the database fewer, larger statements.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::Store;
use hookrelay_core::store::{Claimed, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::batch_window::{self, BatchWindow};

/// Most deliveries claimed in one statement.
const MAX_BATCH: usize = 1000;
/// Claims in flight at once: one runs while the next batch gathers.
const WORKERS: usize = 2;
/// Claims of the bulk lane in flight at once.
const BULK_WORKERS: usize = 1;

/// What became of one message's claim.
#[derive(Debug)]
pub enum ClaimResult {
    Claimed(Claimed),
    /// Its shard is stopping (or the dispatcher is) while the database is away.
    Stopped,
    /// The database refused its deliveries for good, with why.
    Refused(String),
}

struct Request {
    ids: Vec<Uuid>,
    attempts: Option<Vec<i32>>,
    /// The shard's stop signal: while the database is away, a stopped shard's
    /// message leaves the batch.
    cancel: CancellationToken,
    reply: oneshot::Sender<ClaimResult>,
}

/// The senders' handle; clone freely.
#[derive(Clone)]
pub struct Claimer {
    tx: mpsc::Sender<Request>,
    bulk: mpsc::Sender<Request>,
}

impl Claimer {
    /// Starts the claim workers; each claim holds its deliveries for `claim_for`.
    /// `stop` ends them (after the senders are done).
    pub fn spawn(store: Store, claim_for: Duration, stop: CancellationToken) -> Self {
        let queue = |workers: usize, windowed: bool| {
            let (tx, rx) = mpsc::channel(4096);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..workers {
                let worker = Worker {
                    store: store.clone(),
                    claim_for,
                    stop: stop.clone(),
                    rx: rx.clone(),
                    window: windowed.then(|| BatchWindow::statements(Instant::now())),
                };
                tokio::spawn(worker.run());
            }
            tx
        };
        Self {
            tx: queue(WORKERS, false),
            bulk: queue(BULK_WORKERS, true),
        }
    }

    /// Claims and loads the open deliveries among `ids` (see `Store::claim_jobs`);
    /// `bulk`: they came through the bulk ingest lane.
    pub async fn claim(
        &self,
        ids: Vec<Uuid>,
        attempts: Option<Vec<i32>>,
        bulk: bool,
        cancel: &CancellationToken,
    ) -> ClaimResult {
        let (reply, wait) = oneshot::channel();
        let request = Request {
            ids,
            attempts,
            cancel: cancel.clone(),
            reply,
        };
        let tx = if bulk { &self.bulk } else { &self.tx };
        if tx.send(request).await.is_err() {
            return ClaimResult::Stopped;
        }
        wait.await.unwrap_or(ClaimResult::Stopped)
    }
}

struct Worker {
    store: Store,
    claim_for: Duration,
    stop: CancellationToken,
    rx: Arc<Mutex<mpsc::Receiver<Request>>>,
    /// How long a batch waits to fill; `None`: not at all.
    window: Option<BatchWindow>,
}

impl Worker {
    async fn run(mut self) {
        let mut carry: Option<Request> = None;
        loop {
            let batch = match self.gather(carry.take()).await {
                Some((batch, next)) => {
                    carry = next;
                    batch
                }
                None => return,
            };
            self.claim_batch(batch).await;
        }
    }

    /// The first request waiting and whatever else is already waiting behind it:
    /// batches grow with load, not with delay. A worker with a window (the bulk
    /// lane's) also takes what arrives within its wait. A request naming a delivery
    /// already in the batch (or carrying no decisions when the first does, or the
    /// other way round) is handed back to start the next batch. A batch started by
    /// such a request only takes more if the other worker is not waiting for
    /// requests (holding the queue), so it never waits for that worker.
    async fn gather(&mut self, carry: Option<Request>) -> Option<(Vec<Request>, Option<Request>)> {
        let shared = self.rx.clone();
        let (first, mut rx) = match carry {
            Some(first) => (first, shared.try_lock().ok()),
            None => {
                let mut rx = shared.lock().await;
                let first = tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => return None,
                    r = rx.recv() => r?,
                };
                (first, Some(rx))
            }
        };
        let now = Instant::now();
        let deadline = now + self.window.as_mut().map_or(Duration::ZERO, |w| w.wait(now));
        let decided = first.attempts.is_some();
        let mut seen: HashSet<Uuid> = first.ids.iter().copied().collect();
        let mut batch = vec![first];
        let mut carry = None;
        while let Some(rx) = rx.as_mut()
            && seen.len() < MAX_BATCH
        {
            let Some(next) = batch_window::next_by(&mut **rx, deadline).await else {
                break;
            };
            if next.attempts.is_some() != decided || next.ids.iter().any(|id| seen.contains(id)) {
                carry = Some(next);
                break;
            }
            seen.extend(next.ids.iter().copied());
            batch.push(next);
        }
        if let Some(w) = self.window.as_mut() {
            w.record(batch.len(), now);
        }
        Some((batch, carry))
    }

    async fn claim_batch(&self, mut batch: Vec<Request>) {
        let mut backoff = Backoff::outage();
        loop {
            let ids: Vec<Uuid> = batch.iter().flat_map(|r| r.ids.iter().copied()).collect();
            let attempts: Option<Vec<i32>> = batch
                .iter()
                .map(|r| r.attempts.as_deref())
                .collect::<Option<Vec<&[i32]>>>()
                .map(|a| a.concat());
            match self
                .store
                .claim_jobs(&ids, attempts.as_deref(), self.claim_for)
                .await
            {
                Ok(claimed) => return split(claimed, batch),
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "claiming deliveries failed; retrying");
                    let stopping = self.stop.is_cancelled();
                    batch = give_up_stopped(batch, stopping);
                    if batch.is_empty() || !backoff.wait(&self.stop).await {
                        return give_up(batch);
                    }
                }
                Err(e) if batch.len() == 1 => return refuse(batch, &e),
                Err(e) => {
                    tracing::warn!(error = %e, messages = batch.len(), "the database refused a batch of claims; claiming one message at a time");
                    for request in batch {
                        Box::pin(self.claim_batch(vec![request])).await;
                    }
                    return;
                }
            }
        }
    }
}

/// Hands each request its own deliveries and their events' payloads.
fn split(claimed: Claimed, batch: Vec<Request>) {
    let Claimed {
        jobs,
        payloads,
        large,
    } = claimed;
    let large: HashMap<Uuid, usize> = large.into_iter().collect();
    let mut jobs: HashMap<Uuid, hookrelay_core::store::SendJob> =
        jobs.into_iter().map(|j| (j.delivery_id, j)).collect();
    for request in batch {
        let mut own = Claimed::default();
        for id in &request.ids {
            let Some(job) = jobs.remove(id) else { continue };
            if let Some(p) = payloads.get(&job.event_id) {
                own.payloads
                    .entry(job.event_id)
                    .or_insert_with(|| p.clone());
            } else if let Some(n) = large.get(&job.event_id)
                && !own.large.iter().any(|(e, _)| *e == job.event_id)
            {
                own.large.push((job.event_id, *n));
            }
            own.jobs.push(job);
        }
        let _ = request.reply.send(ClaimResult::Claimed(own));
    }
}

/// While the database is away: the requests whose shard is stopping (all of them
/// once the dispatcher is) give up; the rest stay for the next try.
fn give_up_stopped(batch: Vec<Request>, all: bool) -> Vec<Request> {
    let (gone, stay): (Vec<Request>, Vec<Request>) = batch
        .into_iter()
        .partition(|r| all || r.cancel.is_cancelled());
    give_up(gone);
    stay
}

fn give_up(batch: Vec<Request>) {
    for request in batch {
        let _ = request.reply.send(ClaimResult::Stopped);
    }
}

fn refuse(batch: Vec<Request>, e: &StoreError) {
    for request in batch {
        let _ = request.reply.send(ClaimResult::Refused(e.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use hookrelay_core::ids::new_id;
    use hookrelay_core::store::NewEvent;
    use sqlx::PgPool;

    use super::*;

    /// A tenant with two endpoints and three events routed to both: six deliveries.
    async fn routed(store: &Store) -> (Vec<Uuid>, Vec<Uuid>, HashMap<Uuid, String>) {
        let tenant = new_id();
        sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'claims')")
            .bind(tenant)
            .execute(store.pool())
            .await
            .expect("tenant");
        let endpoints = [new_id(), new_id()];
        for id in endpoints {
            sqlx::query(
                "INSERT INTO endpoints (id, tenant_id, url, secret_ciphertext)
                 VALUES ($1, $2, 'http://127.0.0.1:9/hook', '\\x00')",
            )
            .bind(id)
            .bind(tenant)
            .execute(store.pool())
            .await
            .expect("endpoint");
        }
        let events: Vec<NewEvent> = (0..3)
            .map(|i| NewEvent {
                id: new_id(),
                tenant_id: tenant,
                event_type: "order.paid".into(),
                payload: format!(r#"{{"n":{i}}}"#),
                idempotency_key: None,
                accepted_at: chrono::Utc::now(),
                request_id: None,
                traceparent: None,
            })
            .collect();
        let payloads = events.iter().map(|e| (e.id, e.payload.clone())).collect();
        let deliveries = store
            .route_events(&events, Duration::from_secs(60))
            .await
            .expect("routed");
        assert_eq!(deliveries.len(), 6);
        let of = |endpoint: Uuid| -> Vec<Uuid> {
            deliveries
                .iter()
                .filter(|d| d.endpoint_id == endpoint)
                .map(|d| d.id)
                .collect()
        };
        (of(endpoints[0]), of(endpoints[1]), payloads)
    }

    fn jobs(result: ClaimResult) -> Vec<hookrelay_core::store::SendJob> {
        match result {
            ClaimResult::Claimed(c) => c.into_jobs(Vec::new()),
            other => panic!("not claimed: {other:?}"),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn concurrent_claims_each_get_their_own_deliveries_with_payloads(pool: PgPool) {
        let store = Store::from_pool(pool);
        let (first, second, payloads) = routed(&store).await;
        let stop = CancellationToken::new();
        let claimer = Claimer::spawn(store.clone(), Duration::from_secs(30), stop.clone());
        let cancel = CancellationToken::new();
        // The third message names a delivery of the first: one of them sends it. The
        // second came through the bulk lane, whose worker claims it apart.
        let (a, b, c) = tokio::join!(
            claimer.claim(first.clone(), Some(vec![0; 3]), false, &cancel),
            claimer.claim(second.clone(), Some(vec![0; 3]), true, &cancel),
            claimer.claim(vec![first[0]], Some(vec![0]), false, &cancel),
        );
        let (a, b, c) = (jobs(a), jobs(b), jobs(c));
        let ids = |j: &[hookrelay_core::store::SendJob]| {
            let mut v: Vec<Uuid> = j.iter().map(|j| j.delivery_id).collect();
            v.sort();
            v
        };
        let sorted = |mut v: Vec<Uuid>| {
            v.sort();
            v
        };
        let (a_ids, c_ids) = (ids(&a), ids(&c));
        assert_eq!(ids(&b), sorted(second));
        assert!(
            (a_ids == sorted(first.clone()) && c_ids.is_empty())
                || (c_ids == vec![first[0]] && a_ids == sorted(first[1..].to_vec())),
            "each delivery goes to exactly one message: {a_ids:?} / {c_ids:?}"
        );
        for job in a.iter().chain(&b).chain(&c) {
            assert_eq!(
                &*job.payload, payloads[&job.event_id],
                "payload of its event"
            );
        }
        let claimed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE claimed_until > now() + interval '20 seconds'",
        )
        .fetch_one(store.pool())
        .await
        .expect("count");
        assert_eq!(
            claimed, 6,
            "every delivery is claimed for the claim's length"
        );
        // A second claim of the same deliveries finds them held.
        let again = jobs(claimer.claim(first, Some(vec![0; 3]), false, &cancel).await);
        assert!(again.is_empty());
        stop.cancel();
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_stopped_claimer_answers_stopped(pool: PgPool) {
        let store = Store::from_pool(pool);
        let (first, _, _) = routed(&store).await;
        let stop = CancellationToken::new();
        let claimer = Claimer::spawn(store.clone(), Duration::from_secs(30), stop.clone());
        stop.cancel();
        let result = claimer
            .claim(first, Some(vec![0; 3]), false, &CancellationToken::new())
            .await;
        assert!(matches!(result, ClaimResult::Stopped), "{result:?}");
        let claimed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE claimed_until IS NOT NULL")
                .fetch_one(store.pool())
                .await
                .expect("count");
        assert_eq!(claimed, 0, "nothing is claimed once the claimer stopped");
    }

    /// A bulk worker whose requests arrive every `gap`; returns its batches' sizes.
    async fn bulk_batches(gap: Duration, requests: usize) -> Vec<usize> {
        let (tx, rx) = mpsc::channel(64);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://127.0.0.1:9/unused")
            .expect("lazy pool");
        let mut worker = Worker {
            store: Store::from_pool(pool),
            claim_for: Duration::from_secs(30),
            stop: CancellationToken::new(),
            rx: Arc::new(Mutex::new(rx)),
            window: Some(BatchWindow::statements(Instant::now())),
        };
        tokio::spawn(async move {
            for _ in 0..requests {
                tokio::time::sleep(gap).await;
                let (reply, _) = oneshot::channel();
                let request = Request {
                    ids: vec![new_id()],
                    attempts: None,
                    cancel: CancellationToken::new(),
                    reply,
                };
                if tx.send(request).await.is_err() {
                    return;
                }
            }
        });
        let mut sizes = Vec::new();
        let mut carry = None;
        while let Some((batch, next)) = worker.gather(carry.take()).await {
            sizes.push(batch.len());
            carry = next;
        }
        sizes
    }

    #[tokio::test(start_paused = true)]
    async fn fast_bulk_claims_wait_to_share_a_statement_and_slow_ones_do_not() {
        // 100 a second for three seconds: once the worker has seen a second of them,
        // each claim waits 25 ms and takes two or three.
        let fast = bulk_batches(Duration::from_millis(10), 300).await;
        assert_eq!(fast.iter().sum::<usize>(), 300, "every request is claimed");
        assert_eq!(fast[0], 1, "nothing to go by yet: no wait");
        let late = &fast[fast.len() - 20..fast.len() - 1];
        assert!(late.iter().all(|n| *n >= 2), "{late:?}");
        assert!(
            fast.len() < 200,
            "{} statements for 300 requests",
            fast.len()
        );
        // 20 a second: a wait would not double a claim, so none is made.
        let slow = bulk_batches(Duration::from_millis(50), 60).await;
        assert!(slow.iter().all(|n| *n == 1), "{slow:?}");
    }
}
