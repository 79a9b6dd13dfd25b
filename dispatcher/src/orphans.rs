//! Shard queues left above today's shard count (`HOOKRELAY_SHARDS` lowered) have
//! no consumer: their deliveries are moved to the shard their endpoint hashes to
//! now, and the emptied queue is deleted. (Their rows would come due anyway, later.)

use hookrelay_core::Store;
use hookrelay_core::queue::{self, DeliveryMessage, Publisher};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;

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

/// Republishes every message of the shard's queue to today's shards, then deletes
/// the queue once it is empty and unused. Returns how many messages moved. (Shard
/// queues use single active consumer, which rules out `basic.get`: this consumes.)
async fn move_shard(
    connection: &lapin::Connection,
    store: &Store,
    publisher: &Publisher,
    shard: u16,
) -> Result<usize, String> {
    let topology = publisher.topology();
    let name = topology.delivery_queue(shard);
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match channel
        .queue_declare(name.as_str().into(), passive, FieldTable::default())
        .await
    {
        Ok(_) => {}
        // Already gone: nothing to move.
        Err(e) if queue::amqp_code(&e) == Some(404) => return Ok(0),
        Err(e) => return Err(e.to_string()),
    }
    channel
        .basic_qos(100, BasicQosOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let tag = format!("orphans-{shard}");
    let mut consumer = channel
        .basic_consume(
            name.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut moved = 0;
    // Done once the queue stays quiet for a moment.
    while let Ok(Some(next)) = tokio::time::timeout(QUIET, consumer.next()).await {
        let message = next.map_err(|e| e.to_string())?;
        match serde_json::from_slice::<DeliveryMessage>(&message.data) {
            Ok(m) => {
                let known = store
                    .delivery_endpoints(&m.deliveries)
                    .await
                    .map_err(|e| e.to_string())?;
                publisher
                    .publish_all(&queue::delivery_messages(topology, &known))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Err(e) => publisher
                .dead_letter(
                    &name,
                    &message.data,
                    &format!("unparseable delivery message: {e}"),
                )
                .await
                .map_err(|e| e.to_string())?,
        }
        message
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        moved += 1;
    }
    channel
        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    // Quorum queues refuse `if-unused`/`if-empty` deletes: check, then delete. A
    // message published in between would be lost, but its rows are due anyway.
    let left = channel
        .queue_declare(name.as_str().into(), passive, FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    if left.message_count() > 0 || left.consumer_count() > 0 {
        return Err(format!(
            "{} messages and {} consumers left; trying again next round",
            left.message_count(),
            left.consumer_count()
        ));
    }
    channel
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let _ = channel.close(200, "drained".into()).await;
    Ok(moved)
}
