//! The sender: one consumer per delivery shard. Each message names deliveries of
//! that shard; the sender loads them, sends each still-pending one (signed), has
//! the recorder store every attempt, and acks the message only after that.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::join_all;
use hookrelay_core::Store;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::queue::{DeliveryMessage, Topology};
use hookrelay_core::store::{AttemptRecord, SendJob};
use hookrelay_signature::Secret;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use tokio::sync::Semaphore;
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
        Ok(Err(e)) => tracing::debug!(error = %e, "could not settle a delivery message; the broker redelivers it"),
        Err(_) => tracing::debug!("settling a delivery message timed out; the broker redelivers it"),
    }
}

pub struct Sender {
    pub store: Store,
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
        channel.basic_qos(self.prefetch, BasicQosOptions::default()).await?;
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
        let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
        Ok(())
    }

    async fn handle(self: Arc<Self>, message: Delivery, cancel: CancellationToken) {
        let requeue = BasicNackOptions { multiple: false, requeue: true };
        let ids = match serde_json::from_slice::<DeliveryMessage>(&message.data) {
            Ok(m) => m.deliveries,
            Err(e) => {
                tracing::error!(error = %e, "unparseable delivery message; dead-lettering it");
                settle(message.acker.reject(BasicRejectOptions { requeue: false })).await;
                return;
            }
        };
        let Some(jobs) = db_retry::until_ok("loading deliveries", &cancel, || self.store.send_jobs(&ids)).await else {
            settle(message.acker.nack(requeue)).await;
            return;
        };
        // Only pending deliveries are sent: a duplicate message for a finished one is a no-op.
        let (inactive, due): (Vec<&SendJob>, Vec<&SendJob>) =
            jobs.iter().filter(|j| j.status == DeliveryStatus::Pending).partition(|j| j.endpoint_inactive);
        if !inactive.is_empty() {
            let ids: Vec<Uuid> = inactive.iter().map(|j| j.delivery_id).collect();
            let cancelled = db_retry::until_ok("cancelling deliveries", &cancel, || {
                self.store.cancel_deliveries(&ids, "endpoint deleted or disabled")
            })
            .await;
            if cancelled.is_none() {
                settle(message.acker.nack(requeue)).await;
                return;
            }
        }
        let records: Vec<AttemptRecord> = join_all(due.into_iter().map(|job| self.attempt(job))).await;
        if self.recorder.record(records).await {
            settle(message.acker.ack(BasicAckOptions::default())).await;
        } else {
            settle(message.acker.nack(requeue)).await;
        }
    }

    async fn attempt(&self, job: &SendJob) -> AttemptRecord {
        let _permit = self.permits.acquire().await;
        let Some(secret) = self.cipher.decrypt(&job.secret_ciphertext).ok().and_then(|key| Secret::from_bytes(key).ok())
        else {
            // Never send unsigned.
            return not_sent(job.delivery_id, "endpoint secret cannot be decrypted with the configured key");
        };
        let secrets = [secret];
        self.client
            .send(Outgoing { delivery_id: job.delivery_id, url: &job.url, payload: &job.payload, secrets: &secrets })
            .await
    }
}
