//! Works durable bulk jobs (recover, dead-letter replay, tenant deletion) chunk
//! by chunk; any dispatcher may run it.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often an idle worker looks for new jobs.
const IDLE_POLL: Duration = Duration::from_secs(2);

pub struct JobWorker {
    pub store: Store,
    /// The scheduler sends what a chunk made due.
    pub scheduler_wake: Arc<Notify>,
}

impl JobWorker {
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            let idle = match self.store.work_job_chunk(None).await {
                Ok(Some(n)) => {
                    if n > 0 {
                        self.scheduler_wake.notify_one();
                    }
                    false
                }
                Ok(None) => match self.store.work_tenant_deletion_chunk().await {
                    Ok(found) => found.is_none(),
                    Err(e) => {
                        tracing::warn!(error = %e, "deleting a tenant failed; retrying");
                        true
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "working a job failed; retrying");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            } else if cancel.is_cancelled() {
                return;
            }
        }
    }
}
