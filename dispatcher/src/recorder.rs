//! Batches attempt results from every sender task into single database writes;
//! while results come fast, a write waits a little for more
//! (`BatchWindow::statements`): no delivery waits on its record. A result is
//! acknowledged to its sender only once it is durably stored, so the
//! sender acks the broker message only after the attempt is on record.
//!
//! A batch the database refuses for good (not a transient error) is written again
//! one sender's records at a time, so only the records at fault are affected;
//! those are stored once more without the details the subscriber sent (response
//! body and headers), and only if even that is refused does their sender hear so.

use std::collections::HashSet;

use hookrelay_core::Store;
use hookrelay_core::store::{AttemptRecord, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::batch_window::{self, BatchWindow};

const MAX_BATCH: usize = 1000;

/// Whether a sender's records are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Yes,
    /// The database refused them for good, with why.
    Refused(String),
    /// Shutdown began while the database was away.
    Stopped,
}

type Request = (Vec<AttemptRecord>, oneshot::Sender<Recorded>);

/// The senders' handle; clone freely. The writer stops when every handle is gone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the writer task. `cancel` only stops retries of a failing write.
    pub fn spawn(store: Store, cancel: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(write_loop(store, rx, cancel));
        (Self { tx }, task)
    }

    /// Stores the records; `Recorded::Yes` once they are committed.
    #[tracing::instrument(level = "debug", name = "record", skip_all, fields(attempts = records.len()))]
    pub async fn record(&self, records: Vec<AttemptRecord>) -> Recorded {
        if records.is_empty() {
            return Recorded::Yes;
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send((records, done)).await.is_err() {
            return Recorded::Stopped;
        }
        wait.await.unwrap_or(Recorded::Stopped)
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Request>, cancel: CancellationToken) {
    let mut carry: Option<Request> = None;
    let mut window = BatchWindow::statements(Instant::now());
    loop {
        let first = match carry.take() {
            Some(r) => r,
            // Shutdown ends the loop even if a stuck sender task still holds a handle.
            None => match tokio::select! { r = rx.recv() => r, _ = cancel.cancelled() => None } {
                Some(r) => r,
                None => return,
            },
        };
        // Take whatever else is waiting, or arrives within the window's wait.
        let now = Instant::now();
        let deadline = now + window.wait(now);
        let mut seen: HashSet<Uuid> = first.0.iter().map(|r| r.delivery_id).collect();
        let mut batch = vec![first];
        let mut size = batch[0].0.len();
        while size < MAX_BATCH {
            let Some(next) = batch_window::next_by(&mut rx, deadline).await else {
                break;
            };
            // One statement updates each delivery once: a repeat waits for the next batch.
            if next.0.iter().any(|r| seen.contains(&r.delivery_id)) {
                carry = Some(next);
                break;
            }
            seen.extend(next.0.iter().map(|r| r.delivery_id));
            size += next.0.len();
            batch.push(next);
        }
        window.record(batch.len(), now);
        // The records move into one batch; only the senders' reply channels stay.
        let mut records: Vec<AttemptRecord> = Vec::with_capacity(size);
        let mut sizes = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (r, done) in batch {
            sizes.push(r.len());
            records.extend(r);
            replies.push(done);
        }
        match write_with_retry(&store, &records, &cancel).await {
            Ok(()) => {
                for done in replies {
                    let _ = done.send(Recorded::Yes);
                }
            }
            Err(None) => {
                for done in replies {
                    let _ = done.send(Recorded::Stopped);
                }
            }
            Err(Some(e)) => {
                tracing::warn!(error = %e, "the database refused a batch of attempts; writing them one sender at a time");
                let mut rest = records.into_iter();
                for (n, done) in sizes.into_iter().zip(replies) {
                    let own: Vec<AttemptRecord> = rest.by_ref().take(n).collect();
                    let _ = done.send(write_alone(&store, own, &cancel).await);
                }
            }
        }
    }
}

/// One sender's records on their own; if refused, once more without what the
/// subscriber sent back (the likeliest cause), noting why in the error.
async fn write_alone(
    store: &Store,
    mut records: Vec<AttemptRecord>,
    cancel: &CancellationToken,
) -> Recorded {
    let e = match write_with_retry(store, &records, cancel).await {
        Ok(()) => return Recorded::Yes,
        Err(None) => return Recorded::Stopped,
        Err(Some(e)) => e,
    };
    tracing::warn!(error = %e, "attempts refused; storing them without the response details");
    for r in &mut records {
        r.response_body = None;
        r.response_headers = None;
        let why = format!("the response could not be stored: {e}");
        r.error = Some(match r.error.take() {
            Some(old) => format!("{old}; {why}"),
            None => why,
        });
    }
    match write_with_retry(store, &records, cancel).await {
        Ok(()) => Recorded::Yes,
        Err(None) => Recorded::Stopped,
        Err(Some(e)) => Recorded::Refused(format!("the database refused its attempts: {e}")),
    }
}

/// Retries while the database is unavailable. `Err(None)`: shutdown began first;
/// `Err(Some(e))`: refused for good.
async fn write_with_retry(
    store: &Store,
    records: &[AttemptRecord],
    cancel: &CancellationToken,
) -> Result<(), Option<StoreError>> {
    let mut backoff = Backoff::outage();
    loop {
        match store.record_attempts(records).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, count = records.len(), "recording attempts failed; retrying");
                if !backoff.wait(cancel).await {
                    return Err(None);
                }
            }
            Err(e) => return Err(Some(e)),
        }
    }
}
