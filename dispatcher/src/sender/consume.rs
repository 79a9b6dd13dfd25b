//! A shard's consumer and one message's life: parse, claim and load its
//! deliveries, cancel those of endpoints gone, hold those of paused ones, run
//! their attempts (letting go of the message when only slow requests remain),
//! store the outcomes, ack. Deliveries the router hands over (`local`) live the
//! same life without a message. A message that cannot be handled
//! (unparseable, refused by the database) is dead-lettered with the reason.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hookrelay_core::queue::DeliveryMessage;
use hookrelay_core::store::SendJob;
use lapin::Connection;
use lapin::message::Delivery as BrokerMessage;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::Outcomes;
use super::handoff::SlowWatch;
use super::{Sender, Source};
use crate::consumer::QueueConsumer;
use crate::db_retry;
use crate::outcome::Outcome;
use crate::{DispatchError, settle};

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
        let queue = self.topology.delivery_queue(shard);
        let role = format!("sender-{shard}");
        let mut consumer = QueueConsumer::open(&connection, &queue, self.prefetch, &role).await?;
        let queue: Arc<str> = queue.into();
        // This shard's handlers, so a shard given up is drained before it is released.
        let local = TaskTracker::new();
        let registered = self
            .local
            .register(shard, cancel.clone(), local.clone(), tracker.clone());
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                next = consumer.stream.next() => match next {
                    Some(message) => {
                        let message = message?;
                        let in_hand = registered.in_hand();
                        let handler = self.clone().handle(message, queue.clone(), cancel.clone(), tracker.clone());
                        tracker.spawn(local.track_future(async move {
                            handler.await;
                            drop(in_hand);
                        }));
                    }
                    None => return Err(DispatchError::ConsumerEnded),
                },
            }
        }
        drop(registered);
        let _ = consumer.cancel().await;
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
        let _ = consumer.channel.close(200, "shard released".into()).await;
        Ok(())
    }

    async fn handle(
        self: Arc<Self>,
        message: BrokerMessage,
        queue: Arc<str>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        let (ids, attempts, bulk) = match serde_json::from_slice::<DeliveryMessage>(&message.data) {
            Ok(m) => (m.deliveries, m.attempts, m.bulk),
            Err(e) => {
                let reason = format!("unparseable delivery message: {e}");
                settle::dead_letter(&self.publisher, &message, &queue, &reason, &cancel).await;
                return;
            }
        };
        // Memory follows the budget: room for the deliveries before they are loaded,
        // room for the payload bytes before the large payloads are read.
        let room = self.budget.deliveries(ids.len()).await;
        let source = Source::Broker { message: Box::new(message), queue };
        self.deliver(source, ids, attempts, bulk, room, cancel, tracker)
            .await;
    }

    /// One batch of deliveries' life, from a shard message or handed over by the
    /// router (`source`); `room` is their share of the load budget.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn deliver(
        self: Arc<Self>,
        source: Source,
        ids: Vec<Uuid>,
        attempts: Option<Vec<i32>>,
        bulk: bool,
        room: OwnedSemaphorePermit,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        // Claimed in the statement that loads them (with the claims of other messages
        // waiting at the same time): deliveries another sender holds, that are
        // finished, or attempted since this message's decision, are not among the jobs.
        let claimed = match self.claims.claim(ids, attempts, bulk, &cancel).await {
            Outcome::Done(claimed) => claimed,
            other => {
                let other =
                    other.explain(|e| format!("the database refused to load its deliveries: {e}"));
                return self.settle(other.map(drop), &source, &cancel).await;
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
                .for_message("loading payloads", refused, &source, &cancel, load)
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
                .for_message(what, refused, &source, &cancel, cancel_them)
                .await
                .is_none()
            {
                return;
            }
            self.metrics.outcome(Outcomes::Cancelled, ids.len());
        }
        let (paused, due): (Vec<SendJob>, Vec<SendJob>) = due.into_iter().partition(|j| j.paused);
        if !paused.is_empty() {
            let ids: Vec<Uuid> = paused.iter().map(|j| j.delivery_id).collect();
            let mut endpoints: Vec<Uuid> = paused.iter().map(|j| j.endpoint_id).collect();
            endpoints.sort_unstable();
            endpoints.dedup();
            let hold = || self.store.hold_paused(&ids, &endpoints);
            let refused = "the database refused to hold its paused deliveries";
            if self
                .for_message("holding paused deliveries", refused, &source, &cancel, hold)
                .await
                .is_none()
            {
                return;
            }
            self.metrics.outcome(Outcomes::Held, ids.len());
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
        // A handed-over batch holds no message, but its slow requests are leased all
        // the same: the lease outlasts their claim and counts them as slow.
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
                        if let Outcome::Refused(reason) = this.conclude(outcomes, &cancel).await {
                            tracing::warn!(reason, "outcomes of handed-off deliveries refused; their leases bring them back");
                        }
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
        // Shutdown with the database away (`Stopped`): the claims lapse and the
        // deliveries' due times bring them back.
        let concluded = self.conclude(finished, &cancel).await;
        self.settle(concluded, &source, &cancel).await;
        drop(held);
    }

    /// Settles a message as its outcome says: acked once done, dead-lettered with
    /// the reason when refused, handed back when shutdown came first. A handed-over
    /// batch has no message: what it left undone falls due again from its rows.
    async fn settle(&self, outcome: Outcome, source: &Source, cancel: &CancellationToken) {
        let Source::Broker { message, queue } = source else {
            if let Outcome::Refused(reason) = outcome {
                tracing::warn!(
                    reason,
                    "handed-over deliveries not finished; they fall due again"
                );
            }
            return;
        };
        match outcome {
            Outcome::Done(()) => settle::ack(&message.acker).await,
            Outcome::Refused(reason) => {
                settle::dead_letter(&self.publisher, message, queue, &reason, cancel).await
            }
            Outcome::Stopped => settle::requeue(&message.acker).await,
        }
    }

    /// A store call on behalf of `source`, retried while the database is away.
    /// `None`: the message is settled instead (requeued when shutdown began first,
    /// dead-lettered as `refused: <error>` when the database refused for good).
    async fn for_message<T, F, Fut>(
        &self,
        what: &str,
        refused: &str,
        source: &Source,
        cancel: &CancellationToken,
        op: F,
    ) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, hookrelay_core::store::StoreError>>,
    {
        match db_retry::until_done(what, cancel, op).await {
            Outcome::Done(v) => Some(v),
            other => {
                let other = other.map(drop).explain(|e| format!("{refused}: {e}"));
                self.settle(other, source, cancel).await;
                None
            }
        }
    }
}
