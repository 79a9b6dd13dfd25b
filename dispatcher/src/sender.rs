//! The sender: one consumer per delivery shard. Each message names deliveries of
//! that shard; the sender loads them, sends each still-pending one (signed), has
//! the recorder store every attempt, and acks the message only after that.

use std::sync::Arc;

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::future::join_all;
use hookrelay_core::Store;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::queue::{DeliveryMessage, Topology};
use hookrelay_core::retry::{AttemptResult, RetryPolicy, Verdict};
use hookrelay_core::store::{AttemptRecord, SendJob};
use hookrelay_signature::Secret;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::client::{Outgoing, WebhookClient, not_sent};
use crate::recorder::Recorder;
use crate::{DispatchError, db_retry};

/// Acks towards a connection that died may never complete: the broker requeues
/// those messages anyway, so give up after a while instead of holding the task.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn settle(ack: impl std::future::Future<Output = lapin::Result<bool>>) {
    match tokio::time::timeout(SETTLE_TIMEOUT, ack).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not settle a delivery message; the broker redelivers it")
        }
        Err(_) => {
            tracing::debug!("settling a delivery message timed out; the broker redelivers it")
        }
    }
}

pub struct Sender {
    pub store: Store,
    pub retry: RetryPolicy,
    /// Told when a retry is scheduled, so the local scheduler can wake in time.
    pub scheduler_wake: Arc<Notify>,
    pub cipher: Cipher,
    pub client: WebhookClient,
    pub recorder: Recorder,
    pub topology: Topology,
    /// Bounds concurrent outgoing requests across all shards of this process.
    pub permits: Arc<Semaphore>,
    pub prefetch: u16,
}

impl Sender {
    /// Consumes one shard until `cancel` fires or the channel fails. Message handling
    /// runs on `tracker`, so shutdown can wait for it.
    pub async fn run_shard(
        self: Arc<Self>,
        connection: Arc<Connection>,
        shard: u16,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<(), DispatchError> {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("sender-{shard}-{}", Uuid::new_v4());
        let mut consumer = channel
            .basic_consume(
                self.topology.delivery_queue(shard).into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                next = consumer.next() => match next {
                    Some(message) => {
                        let message = message?;
                        tracker.spawn(self.clone().handle(message, cancel.clone()));
                    }
                    None => return Err(DispatchError::ConsumerEnded),
                },
            }
        }
        let _ = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        Ok(())
    }

    async fn handle(self: Arc<Self>, message: Delivery, cancel: CancellationToken) {
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        let ids = match serde_json::from_slice::<DeliveryMessage>(&message.data) {
            Ok(m) => m.deliveries,
            Err(e) => {
                tracing::error!(error = %e, "unparseable delivery message; dead-lettering it");
                settle(message.acker.reject(BasicRejectOptions { requeue: false })).await;
                return;
            }
        };
        let Some(jobs) =
            db_retry::until_ok("loading deliveries", &cancel, || self.store.send_jobs(&ids)).await
        else {
            settle(message.acker.nack(requeue)).await;
            return;
        };
        // Only open deliveries are sent: a duplicate message for a finished one is a no-op.
        let (inactive, due): (Vec<&SendJob>, Vec<&SendJob>) = jobs
            .iter()
            .filter(|j| matches!(j.status, DeliveryStatus::Pending | DeliveryStatus::Failed))
            .partition(|j| j.endpoint_inactive);
        if !inactive.is_empty() {
            let ids: Vec<Uuid> = inactive.iter().map(|j| j.delivery_id).collect();
            let cancelled = db_retry::until_ok("cancelling deliveries", &cancel, || {
                self.store
                    .cancel_deliveries(&ids, "endpoint deleted or disabled")
            })
            .await;
            if cancelled.is_none() {
                settle(message.acker.nack(requeue)).await;
                return;
            }
        }
        let outcomes: Vec<(AttemptRecord, bool)> =
            join_all(due.iter().map(|job| self.attempt(job))).await;
        let gone: Vec<Uuid> = due
            .iter()
            .zip(&outcomes)
            .filter(|(_, (_, gone))| *gone)
            .map(|(j, _)| j.endpoint_id)
            .collect();
        let records: Vec<AttemptRecord> = outcomes.into_iter().map(|(r, _)| r).collect();
        if records.iter().any(|r| r.next_attempt_at.is_some()) {
            self.scheduler_wake.notify_one();
        }
        let recorded = self.recorder.record(records).await;
        for endpoint in gone {
            let reason = format!(
                "the endpoint answered 410 Gone on {}",
                Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
            );
            if let Err(e) = self.store.disable_endpoint(endpoint, &reason).await {
                tracing::warn!(error = %e, %endpoint, "could not disable a gone endpoint");
            }
        }
        if recorded {
            settle(message.acker.ack(BasicAckOptions::default())).await;
        } else {
            settle(message.acker.nack(requeue)).await;
        }
    }

    /// One attempt, judged by the retry policy; `true` alongside when the endpoint is gone.
    async fn attempt(&self, job: &SendJob) -> (AttemptRecord, bool) {
        let (mut record, retry_after) = {
            let _permit = self.permits.acquire().await;
            match self
                .cipher
                .decrypt(&job.secret_ciphertext)
                .ok()
                .and_then(|key| Secret::from_bytes(key).ok())
            {
                Some(secret) => {
                    let secrets = [secret];
                    self.client
                        .send(Outgoing {
                            delivery_id: job.delivery_id,
                            url: &job.url,
                            payload: &job.payload,
                            secrets: &secrets,
                        })
                        .await
                }
                // Never send unsigned.
                None => (
                    not_sent(
                        job.delivery_id,
                        "endpoint secret cannot be decrypted with the configured key",
                    ),
                    None,
                ),
            }
        };
        let result = AttemptResult {
            status: record.response_status.and_then(|s| u16::try_from(s).ok()),
            retry_after,
        };
        let verdict = self.retry.after_attempt(
            job.attempts as u32 + 1,
            job.routed_at,
            result,
            Utc::now(),
            rand::random(),
        );
        let mut gone = false;
        match verdict {
            Verdict::Delivered => record.status = DeliveryStatus::Delivered,
            Verdict::RetryAt(at) => {
                record.status = DeliveryStatus::Failed;
                record.next_attempt_at = Some(at);
            }
            Verdict::Dead(reason) => {
                record.status = DeliveryStatus::Dead;
                record.error = Some(join(record.error.take(), &reason));
            }
            Verdict::Gone => {
                record.status = DeliveryStatus::Dead;
                record.error = Some(join(
                    record.error.take(),
                    "endpoint gone (410); it is now disabled",
                ));
                gone = true;
            }
        }
        (record, gone)
    }
}

fn join(error: Option<String>, reason: &str) -> String {
    match error {
        Some(e) => format!("{e}; {reason}"),
        None => reason.to_string(),
    }
}
