//! The scheduler: republishes deliveries whose next attempt is due (retries, and
//! routed deliveries whose message was lost) to their shard. It claims rows with
//! `FOR UPDATE SKIP LOCKED`, so every dispatcher may run one. When idle it sleeps
//! until the earliest due time (at most `MAX_SLEEP`), or until a sender in this
//! process schedules an earlier retry. Every few seconds it also moves on ordered
//! endpoints left without a head.

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

/// How often ordered endpoints left without a head are moved on.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

impl Scheduler {
    pub async fn run(self, cancel: CancellationToken) {
        let mut swept = tokio::time::Instant::now();
        loop {
            if swept.elapsed() >= SWEEP_EVERY {
                swept = tokio::time::Instant::now();
                self.sweep_ordered().await;
            }
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
            }
            .min(SWEEP_EVERY);
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

impl Scheduler {
    /// Moves on ordered endpoints that hold deliveries but have no head: their
    /// head finished in a dispatcher that died before moving on, or a recover job
    /// put old deliveries back in line.
    async fn sweep_ordered(&self) {
        let stalled = match self.store.stalled_ordered_endpoints().await {
            Ok(s) if s.is_empty() => return,
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot look for stalled ordered endpoints");
                return;
            }
        };
        match self.store.advance_ordered(&stalled, self.lease).await {
            Ok(heads) => {
                if !heads.is_empty() {
                    let messages = delivery_messages(self.publisher.topology(), &heads);
                    if let Err(e) = self.publisher.publish_all(&messages).await {
                        tracing::debug!(error = %e, "publishing ordered heads failed; they come due after the lease");
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot move ordered endpoints on"),
        }
    }
}
