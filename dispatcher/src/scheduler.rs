//! The scheduler: republishes deliveries whose next attempt is due (retries, and
//! routed deliveries whose message was lost) to their shard. It claims rows with
//! `FOR UPDATE SKIP LOCKED`, so every dispatcher may run one. When idle it sleeps
//! until the earliest due time (at most `MAX_SLEEP`), or until a sender in this
//! process schedules an earlier retry.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::Store;
use hookrelay_core::queue::Publisher;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db_retry;
use hookrelay_core::queue::delivery_messages;

/// Rows claimed per round.
const BATCH: i64 = 1000;
/// Longest sleep: bounds how late a retry scheduled by another dispatcher is seen.
const MAX_SLEEP: Duration = Duration::from_secs(5);

pub struct Scheduler {
    pub store: Store,
    pub publisher: Arc<Publisher>,
    /// Poked by senders that schedule a retry.
    pub wake: Arc<Notify>,
    /// A claimed delivery whose message goes missing is claimed again after this.
    pub lease: Duration,
}

impl Scheduler {
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            let Some(due) = db_retry::until_ok("claiming due deliveries", &cancel, || {
                self.store.claim_due(BATCH, self.lease)
            })
            .await
            else {
                return;
            };
            if !due.is_empty() {
                let messages = delivery_messages(self.publisher.topology(), &due);
                if let Err(e) = self.publisher.publish_all(&messages).await {
                    // The claim's lease brings them back.
                    tracing::warn!(error = %e, count = due.len(), "republishing due deliveries failed; they come due again after the lease");
                } else {
                    tracing::debug!(count = due.len(), "republished due deliveries");
                }
                if due.len() as i64 == BATCH {
                    continue;
                }
            }
            // On the database's clock, like every due time.
            let sleep = match self.store.next_due_in().await {
                Ok(Some(wait)) => wait.min(MAX_SLEEP),
                Ok(None) | Err(_) => MAX_SLEEP,
            };
            let sleep = if sleep.is_zero() && due.is_empty() {
                // Due rows exist but another scheduler holds them: give it a moment.
                Duration::from_millis(50)
            } else {
                sleep
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }
}
