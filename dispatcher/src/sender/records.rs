//! The senders' attempt records, batched (`batcher`) into single writes; while
//! records come fast, a write waits a little for more (`BatchWindow::statements`):
//! no delivery waits on its record to be sent. A sender hears its records are
//! stored only once they are committed, so it acks the broker message only after
//! the attempt is on record.
//!
//! A batch the database refuses for good is written again one sender's records at
//! a time, so only the records at fault are affected; those are stored once more
//! without the details the subscriber sent (response body and headers), and only
//! if even that is refused does their sender hear so.

use hookrelay_core::Store;
use hookrelay_core::store::{AttemptRecord, StoreError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::batcher::{Batcher, Statement};
use crate::db_retry;
use crate::outcome::Outcome;
use crate::tasks::Tasks;

/// Writes attempt records with their deliveries' new state and the health rollup.
struct RecordStatement {
    store: Store,
}

impl Statement for RecordStatement {
    type Input = Vec<AttemptRecord>;
    type Output = ();
    const WHAT: &'static str = "recording attempts";

    fn ids(input: &Vec<AttemptRecord>) -> impl Iterator<Item = Uuid> + '_ {
        input.iter().map(|r| r.delivery_id)
    }

    async fn run(&self, batch: &[&Vec<AttemptRecord>]) -> Result<Vec<()>, StoreError> {
        let records: Vec<&AttemptRecord> = batch.iter().flat_map(|r| r.iter()).collect();
        self.store.record_attempts(&records).await?;
        Ok(vec![(); batch.len()])
    }

    /// Once more without what the subscriber sent back (the likeliest cause),
    /// noting why in the error.
    async fn refused(
        &self,
        mut records: Vec<AttemptRecord>,
        e: StoreError,
        stop: &CancellationToken,
    ) -> Outcome {
        tracing::warn!(error = %e, "attempts refused; storing them without the response details");
        let why = format!("the response could not be stored: {e}");
        for r in &mut records {
            r.response_body = None;
            r.response_headers = None;
            r.error = Some(match r.error.take() {
                Some(old) => format!("{old}; {why}"),
                None => why.clone(),
            });
        }
        let write = || self.store.record_attempts(&records);
        db_retry::until_done(Self::WHAT, stop, write)
            .await
            .explain(|e| format!("the database refused its attempts: {e}"))
    }
}

/// The senders' handle; clone freely.
#[derive(Clone)]
pub struct Records {
    batcher: Batcher<RecordStatement>,
}

impl Records {
    /// Starts the writer task. `stop` ends it (after the senders are done); until
    /// then it retries a failing write. Its task joins `tasks`.
    pub fn spawn(store: Store, stop: CancellationToken, tasks: &mut Tasks) -> Self {
        Self {
            batcher: Batcher::spawn(RecordStatement { store }, 1, true, stop, tasks),
        }
    }

    /// Stores the records; `Done` once they are committed.
    #[tracing::instrument(level = "debug", name = "record", skip_all, fields(attempts = records.len()))]
    pub async fn record(&self, records: Vec<AttemptRecord>) -> Outcome {
        if records.is_empty() {
            return Outcome::Done(());
        }
        self.batcher.submit(records, None).await
    }
}
