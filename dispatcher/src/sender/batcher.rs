//! One batching task for the claims and the attempt records. Requests from every
//! shard's messages gather into one statement: the first request waiting and
//! whatever waits behind it, so batches grow with load, not with delay; with a
//! window (`BatchWindow::statements`) a batch also takes what arrives within its
//! wait while requests come fast. A request naming an id already in the batch, or
//! one the batch's kind cannot take, is carried over to start the next batch.
//!
//! While the database is away a batch waits with backoff, and the requests whose
//! message stopped leave it (`Stopped`, all of them once the batcher stops). A
//! batch the database refuses for good runs again one request at a time, so only
//! the request at fault is refused; its statement may try it once more in a form
//! the database may take (`Statement::refused`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::store::StoreError;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::batch_window::{self, BatchWindow};
use crate::outcome::Outcome;
use crate::tasks::Tasks;

/// Most ids one statement touches.
const MAX_IDS: usize = 1000;

/// A statement that serves many requests at once.
pub trait Statement: Send + Sync + 'static {
    type Input: Send + Sync + 'static;
    type Output: Send + 'static;
    /// Names the work in the logs ("claiming deliveries").
    const WHAT: &'static str;

    /// The ids a request touches: one statement touches each id once.
    fn ids(input: &Self::Input) -> impl Iterator<Item = Uuid> + '_;

    /// Whether `next` may share a statement with a batch started by `first`.
    fn joins(_first: &Self::Input, _next: &Self::Input) -> bool {
        true
    }

    /// Runs one statement for the batch: one output per request, in order.
    fn run(
        &self,
        batch: &[&Self::Input],
    ) -> impl Future<Output = Result<Vec<Self::Output>, StoreError>> + Send;

    /// A request the database refused on its own, with why: its final outcome.
    fn refused(
        &self,
        _input: Self::Input,
        error: StoreError,
        _stop: &CancellationToken,
    ) -> impl Future<Output = Outcome<Self::Output>> + Send {
        async move { Outcome::Refused(error.to_string()) }
    }
}

struct Request<S: Statement> {
    input: S::Input,
    /// The stop signal of the request's message: while the database is away, a
    /// stopped message leaves the batch.
    cancel: Option<CancellationToken>,
    reply: oneshot::Sender<Outcome<S::Output>>,
}

/// The senders' handle; clone freely.
pub struct Batcher<S: Statement> {
    tx: mpsc::Sender<Request<S>>,
}

impl<S: Statement> Clone for Batcher<S> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

impl<S: Statement> Batcher<S> {
    /// Starts `workers` tasks running `statement`'s batches (one runs while the
    /// next gathers); `windowed`: a batch waits a little for more while requests
    /// come fast. `stop` ends them (once the senders are done); they join `tasks`.
    pub fn spawn(
        statement: S,
        workers: usize,
        windowed: bool,
        stop: CancellationToken,
        tasks: &mut Tasks,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let rx = Arc::new(Mutex::new(rx));
        let statement = Arc::new(statement);
        for _ in 0..workers.max(1) {
            let worker = Worker {
                statement: statement.clone(),
                stop: stop.clone(),
                rx: rx.clone(),
                window: windowed.then(|| BatchWindow::statements(Instant::now())),
            };
            tasks.spawn(S::WHAT, worker.run());
        }
        Self { tx }
    }

    /// Runs `input` in the next batch; `cancel`: the request's message stopping.
    pub async fn submit(
        &self,
        input: S::Input,
        cancel: Option<&CancellationToken>,
    ) -> Outcome<S::Output> {
        let (reply, wait) = oneshot::channel();
        let request = Request { input, cancel: cancel.cloned(), reply };
        if self.tx.send(request).await.is_err() {
            return Outcome::Stopped;
        }
        wait.await.unwrap_or(Outcome::Stopped)
    }
}

struct Worker<S: Statement> {
    statement: Arc<S>,
    stop: CancellationToken,
    rx: Arc<Mutex<mpsc::Receiver<Request<S>>>>,
    /// How long a batch waits to fill; `None`: not at all.
    window: Option<BatchWindow>,
}

impl<S: Statement> Worker<S> {
    async fn run(mut self) {
        let mut carry: Option<Request<S>> = None;
        while let Some((batch, next)) = self.gather(carry.take()).await {
            carry = next;
            self.run_batch(batch).await;
        }
    }

    /// The first request and those waiting behind it (and, with a window, arriving
    /// within its wait), plus the request that must start the next batch. A batch
    /// started by a carried request only takes more if no other worker is waiting
    /// for requests (holding the queue), so it never waits for that worker.
    async fn gather(
        &mut self,
        carry: Option<Request<S>>,
    ) -> Option<(Vec<Request<S>>, Option<Request<S>>)> {
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
        let mut seen: HashSet<Uuid> = S::ids(&first.input).collect();
        let mut batch = vec![first];
        let mut carry = None;
        while let Some(rx) = rx.as_mut()
            && seen.len() < MAX_IDS
        {
            let Some(next) = batch_window::next_by(&mut **rx, deadline).await else {
                break;
            };
            if !S::joins(&batch[0].input, &next.input)
                || S::ids(&next.input).any(|id| seen.contains(&id))
            {
                carry = Some(next);
                break;
            }
            seen.extend(S::ids(&next.input));
            batch.push(next);
        }
        if let Some(w) = self.window.as_mut() {
            w.record(batch.len(), now);
        }
        Some((batch, carry))
    }

    async fn run_batch(&self, mut batch: Vec<Request<S>>) {
        let mut backoff = Backoff::outage();
        loop {
            let inputs: Vec<&S::Input> = batch.iter().map(|r| &r.input).collect();
            match self.statement.run(&inputs).await {
                Ok(outputs) => {
                    for (request, output) in batch.into_iter().zip(outputs) {
                        let _ = request.reply.send(Outcome::Done(output));
                    }
                    return;
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, requests = batch.len(), "{} failed; retrying", S::WHAT);
                    batch = self.leave_if_stopped(batch);
                    if batch.is_empty() || !backoff.wait(&self.stop).await {
                        return stopped(batch);
                    }
                }
                Err(e) if batch.len() == 1 => {
                    let request = batch.pop().expect("one request");
                    let outcome = self.statement.refused(request.input, e, &self.stop).await;
                    let _ = request.reply.send(outcome);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, requests = batch.len(), "the database refused a batch {}; trying one request at a time", S::WHAT);
                    for request in batch {
                        Box::pin(self.run_batch(vec![request])).await;
                    }
                    return;
                }
            }
        }
    }

    /// While the database is away: the requests whose message is stopping (all of
    /// them once the batcher is) leave; the rest stay for the next try.
    fn leave_if_stopped(&self, batch: Vec<Request<S>>) -> Vec<Request<S>> {
        let all = self.stop.is_cancelled();
        let (gone, stay): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|r| all || r.cancel.as_ref().is_some_and(|c| c.is_cancelled()));
        stopped(gone);
        stay
    }
}

fn stopped<S: Statement>(batch: Vec<Request<S>>) {
    for request in batch {
        let _ = request.reply.send(Outcome::Stopped);
    }
}

#[cfg(test)]
mod tests {
    use hookrelay_core::ids::new_id;

    use super::*;

    /// Runs nothing; notes each batch's size.
    #[derive(Default)]
    struct Echo {
        batches: Arc<std::sync::Mutex<Vec<usize>>>,
    }

    impl Statement for Echo {
        type Input = Uuid;
        type Output = ();
        const WHAT: &'static str = "echoing";

        fn ids(input: &Uuid) -> impl Iterator<Item = Uuid> + '_ {
            std::iter::once(*input)
        }

        async fn run(&self, batch: &[&Uuid]) -> Result<Vec<()>, StoreError> {
            self.batches.lock().expect("lock").push(batch.len());
            Ok(vec![(); batch.len()])
        }
    }

    /// A windowed worker whose requests arrive every `gap`; returns its batches' sizes.
    async fn windowed_batches(gap: Duration, requests: usize) -> Vec<usize> {
        let (tx, rx) = mpsc::channel(64);
        let mut worker = Worker {
            statement: Arc::new(Echo::default()),
            stop: CancellationToken::new(),
            rx: Arc::new(Mutex::new(rx)),
            window: Some(BatchWindow::statements(Instant::now())),
        };
        tokio::spawn(async move {
            for _ in 0..requests {
                tokio::time::sleep(gap).await;
                let (reply, _) = oneshot::channel();
                let request = Request::<Echo> { input: new_id(), cancel: None, reply };
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
    async fn fast_requests_wait_to_share_a_statement_and_slow_ones_do_not() {
        // 100 a second for three seconds: once the worker has seen a second of them,
        // each batch waits 25 ms and takes two or three.
        let fast = windowed_batches(Duration::from_millis(10), 300).await;
        assert_eq!(fast.iter().sum::<usize>(), 300, "every request is taken");
        assert_eq!(fast[0], 1, "nothing to go by yet: no wait");
        let late = &fast[fast.len() - 20..fast.len() - 1];
        assert!(late.iter().all(|n| *n >= 2), "{late:?}");
        assert!(
            fast.len() < 200,
            "{} statements for 300 requests",
            fast.len()
        );
        // 20 a second: a wait would not double a batch, so none is made.
        let slow = windowed_batches(Duration::from_millis(50), 60).await;
        assert!(slow.iter().all(|n| *n == 1), "{slow:?}");
    }

    #[tokio::test]
    async fn a_request_repeating_an_id_starts_the_next_batch() {
        let echo = Echo::default();
        let batches = echo.batches.clone();
        let stop = CancellationToken::new();
        let batcher = Batcher::spawn(echo, 1, false, stop, &mut Tasks::default());
        let (id, other) = (new_id(), new_id());
        let (a, b, c) = tokio::join!(
            batcher.submit(id, None),
            batcher.submit(other, None),
            batcher.submit(id, None)
        );
        assert_eq!(
            (a, b, c),
            (Outcome::Done(()), Outcome::Done(()), Outcome::Done(()))
        );
        // The first two share a statement; the repeat waits for the next one.
        assert_eq!(*batches.lock().expect("lock"), vec![2, 1]);
    }

    #[tokio::test]
    async fn a_stopped_batcher_answers_stopped() {
        let stop = CancellationToken::new();
        let batcher = Batcher::spawn(
            Echo::default(),
            2,
            false,
            stop.clone(),
            &mut Tasks::default(),
        );
        stop.cancel();
        assert_eq!(batcher.submit(new_id(), None).await, Outcome::Stopped);
    }
}
