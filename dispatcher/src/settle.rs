//! Settling broker messages, shared by every consumer: ack, hand back, or, for a
//! message that cannot be handled, dead-letter it: it moves to the broker's
//! dead-letter queue with its original body and the reason, and only then is it
//! acked, so it neither blocks its queue nor gets lost.

use std::time::Duration;

use hookrelay_core::queue::Publisher;
use lapin::Acker;
use lapin::message::Delivery as BrokerMessage;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

/// Acks towards a connection that died may never complete: the broker requeues
/// those messages anyway, so give up after a while instead of holding the task.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settles a message (ack or nack), giving up after `SETTLE_TIMEOUT`.
pub async fn settle(ack: impl std::future::Future<Output = lapin::Result<bool>>) {
    match tokio::time::timeout(SETTLE_TIMEOUT, ack).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not settle a message; the broker redelivers it")
        }
        Err(_) => tracing::debug!("settling a message timed out; the broker redelivers it"),
    }
}

pub async fn ack(acker: &Acker) {
    settle(acker.ack(BasicAckOptions::default())).await;
}

/// Hands the message back to the broker (shutdown only: every requeue counts
/// towards the queue's delivery limit).
pub async fn requeue(acker: &Acker) {
    settle(acker.nack(BasicNackOptions { multiple: false, requeue: true })).await;
}

/// Dead-letters one message with `reason`, then acks it. While the broker refuses
/// the dead letter, holds on with backoff; on shutdown the message is handed back.
pub async fn dead_letter(
    publisher: &Publisher,
    message: &BrokerMessage,
    source: &str,
    reason: &str,
    cancel: &CancellationToken,
) {
    let acker = &message.acker;
    let mut backoff = Backoff::outage();
    loop {
        match publisher.dead_letter(source, &message.data, reason).await {
            Ok(()) => {
                tracing::error!(queue = source, reason, "message dead-lettered");
                ack(acker).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, queue = source, "cannot dead-letter a message yet; holding it");
                if !backoff.wait(cancel).await {
                    requeue(acker).await;
                    return;
                }
            }
        }
    }
}
