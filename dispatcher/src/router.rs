//! The router: consumes accepted events from the ingest queue in batches, stores
//! them with one delivery row per subscribed endpoint (idempotently), publishes the
//! new deliveries to their endpoint's shard, and only then acks the ingest messages.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hookrelay_core::Store;
use hookrelay_core::queue::{IngestMessage, Publisher};
use hookrelay_core::store::{NewDelivery, NewEvent};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{DispatchError, db_retry};
use hookrelay_core::queue::delivery_messages;

/// Most ingest messages handled in one database transaction.
const MAX_BATCH: usize = 256;
/// How long a batch waits to fill once its first message arrived.
const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// Pause after a failed publish before taking the requeued batch again.
const PUBLISH_RETRY_PAUSE: Duration = Duration::from_millis(500);

pub struct Router {
    pub store: Store,
    pub publisher: Arc<Publisher>,
    pub prefetch: u16,
}

impl Router {
    /// Consumes until `cancel` fires or the channel fails; in-flight batches finish first.
    pub async fn run(
        &self,
        connection: &Connection,
        cancel: CancellationToken,
    ) -> Result<(), DispatchError> {
        let topology = self.publisher.topology();
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("router-{}", Uuid::new_v4());
        let mut consumer = channel
            .basic_consume(
                topology.ingest_queue().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => break,
                next = consumer.next() => match next {
                    Some(d) => d?,
                    None => return Err(DispatchError::ConsumerEnded),
                },
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(deadline, consumer.next()).await {
                    Ok(Some(d)) => batch.push(d?),
                    _ => break,
                }
            }
            self.handle_batch(&channel, batch, &cancel).await?;
        }
        let _ = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        Ok(())
    }

    async fn handle_batch(
        &self,
        channel: &Channel,
        batch: Vec<Delivery>,
        cancel: &CancellationToken,
    ) -> lapin::Result<()> {
        let mut events = Vec::new();
        let mut redelivered_events = Vec::new();
        let mut good = Vec::with_capacity(batch.len());
        for message in batch {
            match serde_json::from_slice::<IngestMessage>(&message.data) {
                Ok(parsed) => {
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
                        });
                    }
                    good.push(message);
                }
                Err(e) => {
                    // Dead-lettered by the queue's DLX, never dropped or retried forever.
                    tracing::error!(error = %e, "unparseable ingest message; dead-lettering it");
                    message
                        .acker
                        .reject(BasicRejectOptions { requeue: false })
                        .await?;
                }
            }
        }
        let Some(last) = good.last().map(|m| m.delivery_tag) else {
            return Ok(());
        };

        let Some(mut deliveries) = self
            .store_events(&events, &redelivered_events, cancel)
            .await
        else {
            // Shutting down while the database is away: hand the messages back.
            channel
                .basic_nack(
                    last,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await?;
            return Ok(());
        };
        deliveries.sort_unstable_by_key(|d| d.id);
        deliveries.dedup_by_key(|d| d.id);

        let messages = delivery_messages(self.publisher.topology(), &deliveries);
        match self.publisher.publish_all(&messages).await {
            Ok(()) => {
                channel
                    .basic_ack(last, BasicAckOptions { multiple: true })
                    .await
            }
            Err(e) => {
                // The rows are stored; the redelivered ingest messages republish them.
                tracing::warn!(error = %e, "publishing deliveries failed; requeueing the batch");
                channel
                    .basic_nack(
                        last,
                        BasicNackOptions {
                            multiple: true,
                            requeue: true,
                        },
                    )
                    .await?;
                // Give the broker a moment instead of spinning on the same messages.
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(PUBLISH_RETRY_PAUSE) => {}
                }
                Ok(())
            }
        }
    }

    /// Stores the events; returns new deliveries plus, for messages seen before,
    /// deliveries stored then but possibly never published.
    async fn store_events(
        &self,
        events: &[NewEvent],
        redelivered: &[Uuid],
        cancel: &CancellationToken,
    ) -> Option<Vec<NewDelivery>> {
        let mut deliveries =
            db_retry::until_ok("routing events", cancel, || self.store.route_events(events))
                .await?;
        if !redelivered.is_empty() {
            let fresh: HashSet<Uuid> = deliveries.iter().map(|d| d.id).collect();
            let again = db_retry::until_ok("finding unsent deliveries", cancel, || {
                self.store.unattempted_deliveries(redelivered)
            })
            .await?;
            deliveries.extend(again.into_iter().filter(|d| !fresh.contains(&d.id)));
        }
        Some(deliveries)
    }
}
