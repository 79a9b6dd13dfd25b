//! Shard queues left above today's shard count (`HOOKRELAY_SHARDS` lowered) have
//! no consumer: their deliveries are moved to the shard their endpoint hashes to
//! now, and the emptied queue is deleted. (Their rows would come due anyway, later.)

use hookrelay_core::Store;
use hookrelay_core::queue::{self, DeliveryMessage, Publisher};
use hookrelay_core::store::StoreError;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;

use crate::consumer::QueueConsumer;

/// A drained queue is one that delivers nothing for this long.
const QUIET: Duration = Duration::from_millis(500);

/// Moves what every orphaned shard queue holds; errors are logged and retried on
/// the next round.
pub async fn drain(store: &Store, publisher: &Publisher, broker: &queue::Broker) {
    let topology = publisher.topology();
    let orphans = match store.orphaned_shards(topology.shards()).await {
        Ok(o) => o,
        Err(e) => {
            tracing::debug!(error = %e, "cannot list orphaned shards; next round then");
            return;
        }
    };
    if orphans.is_empty() {
        return;
    }
    let connection = match broker.connect("orphans").await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "cannot reach the broker to drain orphaned shards");
            return;
        }
    };
    for shard in orphans {
        match move_shard(&connection, store, publisher, shard).await {
            Ok(moved) => {
                tracing::info!(shard, moved, "orphaned shard queue drained and deleted");
                if let Err(e) = store.forget_shard(shard).await {
                    tracing::debug!(error = %e, shard, "could not forget the drained shard");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, shard, "could not drain an orphaned shard queue yet")
            }
        }
    }
    let _ = connection.close(200, "drained".into()).await;
}

/// Why an orphaned queue was not drained this round.
#[derive(Debug, thiserror::Error)]
enum NotDrained {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("publishing: {0}")]
    Publish(#[from] queue::PublishError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{messages} messages and {consumers} consumers left; trying again next round")]
    InUse { messages: u32, consumers: u32 },
}

/// Republishes every message of the shard's queue to today's shards, then deletes
/// the queue once it is empty and unused. Returns how many messages moved. (Shard
/// queues use single active consumer, which rules out `basic.get`: this consumes.)
async fn move_shard(
    connection: &lapin::Connection,
    store: &Store,
    publisher: &Publisher,
    shard: u16,
) -> Result<usize, NotDrained> {
    let topology = publisher.topology();
    let name = topology.delivery_queue(shard);
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    match channel
        .queue_declare(name.as_str().into(), passive, FieldTable::default())
        .await
    {
        Ok(_) => {}
        // Already gone: nothing to move.
        Err(e) if queue::amqp_code(&e) == Some(404) => return Ok(0),
        Err(e) => return Err(e.into()),
    }
    let mut consumer =
        QueueConsumer::open(connection, &name, 100, &format!("orphans-{shard}")).await?;
    let mut moved = 0;
    // Done once the queue stays quiet for a moment.
    while let Ok(Some(next)) = tokio::time::timeout(QUIET, consumer.stream.next()).await {
        let message = next?;
        match serde_json::from_slice::<DeliveryMessage>(&message.data) {
            Ok(m) => {
                let known = store.delivery_endpoints(&m.deliveries).await?;
                publisher
                    .publish_all(&queue::delivery_messages(topology, &known))
                    .await?;
            }
            Err(e) => {
                let reason = format!("unparseable delivery message: {e}");
                publisher.dead_letter(&name, &message.data, &reason).await?
            }
        }
        message.acker.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    consumer.cancel().await?;
    // Quorum queues refuse `if-unused`/`if-empty` deletes: check, then delete. A
    // message published in between would be lost, but its rows are due anyway.
    let left = channel
        .queue_declare(name.as_str().into(), passive, FieldTable::default())
        .await?;
    if left.message_count() > 0 || left.consumer_count() > 0 {
        return Err(NotDrained::InUse {
            messages: left.message_count(),
            consumers: left.consumer_count(),
        });
    }
    channel
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await?;
    let _ = channel.close(200, "drained".into()).await;
    let _ = consumer.channel.close(200, "drained".into()).await;
    Ok(moved)
}
