//! A shard's consumer and one message's life: parse, claim and load its
//! deliveries, run their attempts (letting go of the message when only slow
//! requests remain), store the outcomes, ack. A message that cannot be handled
//! (unparseable, refused by the database) is dead-lettered with the reason.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hookrelay_core::queue::DeliveryMessage;
use hookrelay_core::store::SendJob;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::Outcomes;
use super::Sender;
use super::handoff::SlowWatch;
use super::outcomes::Stored;
use crate::claimer::ClaimResult;
use crate::db_retry::{self, Halt};
use crate::{DispatchError, isolate};

impl Sender {
    /// Consumes one shard until `cancel` fires or the channel fails. Message handling
    /// runs on `tracker`, so shutdown can wait for it; after `cancel` the shard's
    /// handlers are waited for (up to `drain_limit`) before the channel closes.
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
        let queue = self.topology.delivery_queue(shard);
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let queue: Arc<str> = queue.into();
        // This shard's handlers, so a shard given up is drained before it is released.
        let local = TaskTracker::new();
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                next = consumer.next() => match next {
                    Some(message) => {
                        let message = message?;
                        let handler = self.clone().handle(message, queue.clone(), cancel.clone(), tracker.clone());
                        tracker.spawn(local.track_future(handler));
                    }
                    None => return Err(DispatchError::ConsumerEnded),
                },
            }
        }
        let _ = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        local.close();
        if tokio::time::timeout(self.drain_limit, local.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                shard,
                "shard not drained in time; its unfinished messages are requeued"
            );
        }
        // Requeues whatever was prefetched but not handled.
        let _ = channel.close(200, "shard released".into()).await;
        Ok(())
    }

    async fn handle(
        self: Arc<Self>,
        message: Delivery,
        queue: Arc<str>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        let (ids, attempts, bulk) = match serde_json::from_slice::<DeliveryMessage>(&message.data) {
            Ok(m) => (m.deliveries, m.attempts, m.bulk),
            Err(e) => {
                let reason = format!("unparseable delivery message: {e}");
                isolate::dead_letter(&self.publisher, &message, &queue, &reason, &cancel).await;
                return;
            }
        };
        // Memory follows the budget: room for the deliveries before they are loaded,
        // room for the payload bytes before the large payloads are read.
        let room = self.budget.deliveries(ids.len()).await;
        // Claimed in the statement that loads them (with the claims of other messages
        // waiting at the same time): deliveries another sender holds, that are
        // finished, or attempted since this message's decision, are not among the jobs.
        let claimed = match self.claimer.claim(ids, attempts, bulk, &cancel).await {
            ClaimResult::Claimed(claimed) => claimed,
            ClaimResult::Stopped => return isolate::requeue(&message.acker).await,
            ClaimResult::Refused(e) => {
                let reason = format!("the database refused to load its deliveries: {e}");
                return isolate::dead_letter(&self.publisher, &message, &queue, &reason, &cancel)
                    .await;
            }
        };
        let bytes = self.budget.bytes(claimed.payload_bytes()).await;
        let large: Vec<Uuid> = claimed.large.iter().map(|(id, _)| *id).collect();
        let more = if large.is_empty() {
            Vec::new()
        } else {
            let load = || self.store.event_payloads(&large);
            let refused = "the database refused to load its payloads";
            match self
                .for_message("loading payloads", refused, &message, &queue, &cancel, load)
                .await
            {
                Some(more) => more,
                None => return,
            }
        };
        let jobs = claimed.into_jobs(more);
        let mut held = Some((room, bytes));
        let (inactive, due): (Vec<SendJob>, Vec<SendJob>) =
            jobs.into_iter().partition(|j| j.endpoint_inactive);
        if !inactive.is_empty() {
            let ids: Vec<Uuid> = inactive.iter().map(|j| j.delivery_id).collect();
            let cancel_them = || {
                self.store
                    .cancel_deliveries(&ids, "endpoint deleted or disabled")
            };
            let refused = "the database refused to cancel its deliveries";
            let what = "cancelling deliveries";
            if self
                .for_message(what, refused, &message, &queue, &cancel, cancel_them)
                .await
                .is_none()
            {
                return;
            }
            self.metrics.outcome(Outcomes::Cancelled, ids.len());
        }
        let watch = Arc::new(SlowWatch::default());
        let mut open: HashSet<Uuid> = due.iter().map(|j| j.delivery_id).collect();
        let mut running: FuturesUnordered<_> = due
            .into_iter()
            .map(|job| {
                let (this, watch) = (self.clone(), watch.clone());
                async move {
                    let outcome = this.attempt(&job, &watch).await;
                    (job, outcome)
                }
            })
            .collect();
        let mut finished = Vec::with_capacity(running.len());
        let mut may_hand_off = true;
        while !running.is_empty() {
            // Only slow (or slot-waiting) deliveries hold the message: lease them in
            // Postgres and let go of it, so the shard never waits on one endpoint.
            if may_hand_off && watch.all_slow(running.len()) {
                let open: Vec<Uuid> = open.iter().copied().collect();
                if self.lease(&open, &cancel).await {
                    let rest = std::mem::take(&mut running);
                    let (this, cancel, held) = (self.clone(), cancel.clone(), held.take());
                    tracker.spawn(async move {
                        let _held = held;
                        let outcomes: Vec<_> = rest.collect().await;
                        // A failure here is covered by the lease: the scheduler re-sends.
                        let _ = this.conclude(outcomes, &cancel).await;
                    });
                    break;
                }
                may_hand_off = false;
            }
            tokio::select! {
                Some(done) = running.next() => {
                    open.remove(&done.0.delivery_id);
                    finished.push(done);
                }
                _ = watch.changed.notified() => {}
            }
        }
        match self.conclude(finished, &cancel).await {
            Stored::Yes => isolate::ack(&message.acker).await,
            Stored::Refused(reason) => {
                isolate::dead_letter(&self.publisher, &message, &queue, &reason, &cancel).await
            }
            // Shutdown with the database away: the claims lapse and the deliveries'
            // due times bring them back.
            Stored::Stopped => isolate::requeue(&message.acker).await,
        }
        drop(held);
    }

    /// A store call on behalf of `message`, retried while the database is away.
    /// `None`: the message is settled instead (requeued when shutdown began first,
    /// dead-lettered as `refused: <error>` when the database refused for good).
    async fn for_message<T, F, Fut>(
        &self,
        what: &str,
        refused: &str,
        message: &Delivery,
        queue: &str,
        cancel: &CancellationToken,
        op: F,
    ) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, hookrelay_core::store::StoreError>>,
    {
        match db_retry::until_done(what, cancel, op).await {
            Ok(v) => Some(v),
            Err(Halt::Cancelled) => {
                isolate::requeue(&message.acker).await;
                None
            }
            Err(Halt::Permanent(e)) => {
                let reason = format!("{refused}: {e}");
                isolate::dead_letter(&self.publisher, message, queue, &reason, cancel).await;
                None
            }
        }
    }
}
