//! Batches attempt results from every sender task into single database writes.
//! A result is acknowledged to its sender only once it is durably stored, so the
//! sender acks the broker message only after the attempt is on record.

use std::collections::HashSet;
use std::time::Duration;

use hookrelay_core::Store;
use hookrelay_core::store::AttemptRecord;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const MAX_BATCH: usize = 1000;

type Request = (Vec<AttemptRecord>, oneshot::Sender<bool>);

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

    /// Stores the records; `true` once they are committed.
    pub async fn record(&self, records: Vec<AttemptRecord>) -> bool {
        if records.is_empty() {
            return true;
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send((records, done)).await.is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Request>, cancel: CancellationToken) {
    let mut carry: Option<Request> = None;
    loop {
        let first = match carry.take() {
            Some(r) => r,
            // Shutdown ends the loop even if a stuck sender task still holds a handle.
            None => match tokio::select! { r = rx.recv() => r, _ = cancel.cancelled() => None } {
                Some(r) => r,
                None => return,
            },
        };
        // Take whatever else is already waiting: batches grow with load, not with delay.
        let mut seen: HashSet<Uuid> = first.0.iter().map(|r| r.delivery_id).collect();
        let mut batch = vec![first];
        let mut size = batch[0].0.len();
        while size < MAX_BATCH {
            let Ok(next) = rx.try_recv() else { break };
            // One statement updates each delivery once: a repeat waits for the next batch.
            if next.0.iter().any(|r| seen.contains(&r.delivery_id)) {
                carry = Some(next);
                break;
            }
            seen.extend(next.0.iter().map(|r| r.delivery_id));
            size += next.0.len();
            batch.push(next);
        }
        // The records move into one batch; only the senders' reply channels stay.
        let mut records: Vec<AttemptRecord> = Vec::with_capacity(size);
        let mut replies = Vec::with_capacity(batch.len());
        for (r, done) in batch {
            records.extend(r);
            replies.push(done);
        }
        let ok = write_with_retry(&store, &records, &cancel).await;
        for done in replies {
            let _ = done.send(ok);
        }
    }
}

/// Retries while the database is unavailable, until it works or shutdown begins.
async fn write_with_retry(
    store: &Store,
    records: &[AttemptRecord],
    cancel: &CancellationToken,
) -> bool {
    let mut pause = Duration::from_millis(100);
    loop {
        match store.record_attempts(records).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, count = records.len(), "recording attempts failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return false,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}
