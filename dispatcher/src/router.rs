//! The router: consumes accepted events from the ingest queue in batches, stores
//! them with one delivery row per subscribed endpoint (idempotently), publishes the
//! new deliveries to their endpoint's shard (or hands them to the shard's sender
//! when this process consumes it), and only then acks the ingest messages.
//! A message the database refuses for good is found by splitting the batch and is
//! dead-lettered with the reason; the rest of the batch is routed. While the
//! database or the shard queues are away, the batch is held and retried, never
//! requeued in a loop.
//!
//! Each ingest lane has its own router loop, so a tenant's burst in the bulk lane
//! never holds a batch of the priority lane behind it (see the gateway's `lanes`).
//! The bulk lane publishes its deliveries on a channel of its own, marked as bulk,
//! so neither their confirms nor their claims wait in front of anyone else's.
//! How long a batch waits to fill is `batch_window`'s choice.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hookrelay_core::Store;
use hookrelay_core::queue::{IngestLane, IngestMessage, Publisher};
use hookrelay_core::store::{NewDelivery, NewEvent};
use lapin::message::Delivery as BrokerMessage;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::batch_window::BatchWindow;
use crate::consumer::QueueConsumer;
use crate::db_retry;
use crate::outcome::Outcome;
use crate::sender::Sender;
use crate::{DispatchError, settle};
use hookrelay_core::queue::lane_delivery_messages;

/// Most ingest messages handled in one database transaction.
const MAX_BATCH: usize = 256;
/// Most bytes of ingest messages in one batch: memory and statement size follow
/// the events' bytes, not the count of messages (one may hold 1,000 events).
const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
pub struct Router {
    pub store: Store,
    /// Takes the deliveries of shards consumed in this process (`sender::local`).
    pub sender: Arc<Sender>,
    pub publisher: Arc<Publisher>,
    /// Publishes the bulk lane's deliveries (its own channel).
    pub bulk_publisher: Arc<Publisher>,
    pub prefetch: u16,
    /// How long after routing a delivery nobody finished is due again.
    pub unsent_after: Duration,
}

impl Router {
    /// Consumes `lane` until `cancel` fires or the channel fails; in-flight batches
    /// finish first.
    pub async fn run(
        &self,
        connection: &Connection,
        lane: IngestLane,
        cancel: CancellationToken,
    ) -> Result<(), DispatchError> {
        let queue = self.publisher.topology().ingest_lane(lane);
        let mut consumer = QueueConsumer::open(connection, &queue, self.prefetch, "router").await?;
        let mut window = BatchWindow::router(lane, tokio::time::Instant::now());
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => break,
                next = consumer.stream.next() => match next {
                    Some(d) => d?,
                    None => return Err(DispatchError::ConsumerEnded),
                },
            };
            let mut bytes = first.data.len();
            let mut batch = vec![first];
            let now = tokio::time::Instant::now();
            let deadline = now + window.wait(now);
            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match tokio::time::timeout_at(deadline, consumer.stream.next()).await {
                    Ok(Some(d)) => {
                        let d = d?;
                        bytes += d.data.len();
                        batch.push(d);
                    }
                    _ => break,
                }
            }
            window.record(batch.len(), now);
            self.handle_batch(&consumer.channel, &queue, lane, batch, &cancel)
                .await?;
        }
        let _ = consumer.cancel().await;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "route", skip_all, fields(messages = batch.len()))]
    async fn handle_batch(
        &self,
        channel: &Channel,
        queue: &str,
        lane: IngestLane,
        batch: Vec<BrokerMessage>,
        cancel: &CancellationToken,
    ) -> lapin::Result<()> {
        // Events of every parsed message, in message order; `spans[i]` is message i's.
        let mut events = Vec::new();
        let mut redelivered_events = Vec::new();
        let mut good = Vec::with_capacity(batch.len());
        let mut spans = Vec::with_capacity(batch.len());
        for message in batch {
            match serde_json::from_slice::<IngestMessage>(&message.data) {
                Ok(parsed) => {
                    let start = events.len();
                    for e in parsed.events {
                        if message.redelivered {
                            redelivered_events.push(e.id);
                        }
                        events.push(NewEvent {
                            id: e.id,
                            tenant_id: parsed.tenant_id,
                            event_type: e.event_type,
                            payload: e.payload.get().to_owned(),
                            idempotency_key: e.idempotency_key,
                            accepted_at: e.accepted_at,
                            request_id: e.request_id,
                            traceparent: e.traceparent,
                            channels: e.channels,
                        });
                    }
                    spans.push(start..events.len());
                    good.push(message);
                }
                Err(e) => {
                    let reason = format!("unparseable ingest message: {e}");
                    settle::dead_letter(&self.publisher, &message, queue, &reason, cancel).await;
                }
            }
        }
        if good.is_empty() {
            return Ok(());
        }

        // Each traced event's routing, in its own trace.
        let traced: Vec<tracing::Span> = events
            .iter()
            .filter_map(|e| {
                let tp = e.traceparent.as_deref()?;
                let span = tracing::debug_span!("routed", event = %e.id, tenant = %e.tenant_id);
                hookrelay_core::telemetry::continue_from(&span, tp);
                Some(span)
            })
            .collect();
        let routed = self.store_isolating(&events, &spans, cancel).await;
        drop(traced);
        let Some(Routed { mut deliveries, refused }) = routed else {
            // Shutting down while the database is away: hand the messages back.
            return requeue_all(channel, &good).await;
        };
        let stored: usize = spans
            .iter()
            .zip(&refused)
            .filter(|(_, r)| r.is_none())
            .map(|(span, _)| span.len())
            .sum();
        metrics::counter!(hookrelay_core::metrics::EVENTS_ROUTED).increment(stored as u64);
        metrics::counter!(hookrelay_core::metrics::DELIVERIES_CREATED)
            .increment(deliveries.len() as u64);
        if !redelivered_events.is_empty() {
            // Seen before: deliveries stored then may never have been published.
            let fresh: HashSet<Uuid> = deliveries.iter().map(|d| d.id).collect();
            match db_retry::until_ok("finding unsent deliveries", cancel, || {
                self.store.unattempted_deliveries(&redelivered_events)
            })
            .await
            {
                Some(again) => {
                    deliveries.extend(again.into_iter().filter(|d| !fresh.contains(&d.id)))
                }
                None => return requeue_all(channel, &good).await,
            }
        }
        deliveries.sort_unstable_by_key(|d| d.id);
        deliveries.dedup_by_key(|d| d.id);

        // Hold the batch and retry while the shard queues refuse: requeueing would
        // count towards the delivery limit and spin on the same messages.
        let deliveries = self.sender.hand_over(deliveries, lane == IngestLane::Bulk);
        let messages = lane_delivery_messages(self.publisher.topology(), &deliveries, lane);
        let publisher = match lane {
            IngestLane::Priority => &self.publisher,
            IngestLane::Bulk => &self.bulk_publisher,
        };
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        while !messages.is_empty()
            && let Err(e) = publisher.publish_all(&messages).await
        {
            tracing::warn!(error = %e, "publishing deliveries failed; holding the batch and retrying");
            if !backoff.wait(cancel).await {
                // The rows are stored and due: nothing is lost if these come back.
                return requeue_all(channel, &good).await;
            }
        }
        if refused.iter().all(Option::is_none) {
            let last = good.last().map_or(0, |m| m.delivery_tag);
            return channel
                .basic_ack(last, BasicAckOptions { multiple: true })
                .await;
        }
        // The refused messages go to the dead-letter queue; the rest are done.
        for (message, reason) in good.into_iter().zip(refused) {
            match reason {
                None => settle::ack(&message.acker).await,
                Some(reason) => {
                    settle::dead_letter(&self.publisher, &message, queue, &reason, cancel).await
                }
            }
        }
        Ok(())
    }

    /// Stores the batch's events; when the database refuses it for good (not a
    /// transient error), splits it in halves until the messages at fault stand
    /// alone, so the rest are stored and only those are refused. Returns the new
    /// deliveries and, per message, why it was refused (`None`: stored).
    /// `None` when shutdown began while the database was away.
    async fn store_isolating(
        &self,
        events: &[NewEvent],
        spans: &[Range<usize>],
        cancel: &CancellationToken,
    ) -> Option<Routed> {
        let mut routed = Routed {
            deliveries: Vec::new(),
            refused: vec![None; spans.len()],
        };
        // Ranges of messages still to store; routing is idempotent, so a retried
        // half adds nothing twice.
        let mut todo: Vec<Range<usize>> = Vec::with_capacity(8);
        todo.push(0..spans.len());
        while let Some(messages) = todo.pop() {
            let from = spans[messages.start].start;
            let to = spans[messages.end - 1].end;
            match db_retry::until_done("routing events", cancel, || {
                self.store
                    .route_events(&events[from..to], self.unsent_after)
            })
            .await
            {
                Outcome::Done(created) => routed.deliveries.extend(created),
                Outcome::Stopped => return None,
                Outcome::Refused(e) if messages.len() == 1 => {
                    routed.refused[messages.start] =
                        Some(format!("the database refused its events: {e}"));
                }
                Outcome::Refused(e) => {
                    tracing::warn!(error = %e, messages = messages.len(), "the database refused a batch; splitting it to find the message at fault");
                    let mid = messages.start + messages.len() / 2;
                    todo.push(mid..messages.end);
                    todo.push(messages.start..mid);
                }
            }
        }
        Some(routed)
    }
}

/// What storing a batch gave.
struct Routed {
    deliveries: Vec<NewDelivery>,
    refused: Vec<Option<String>>,
}

/// Hands a batch back to the broker (shutdown only).
async fn requeue_all(channel: &Channel, batch: &[BrokerMessage]) -> lapin::Result<()> {
    let Some(last) = batch.last().map(|m| m.delivery_tag) else {
        return Ok(());
    };
    channel
        .basic_nack(last, BasicNackOptions { multiple: true, requeue: true })
        .await
}
