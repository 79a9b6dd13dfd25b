//! Groups deliveries into messages for their endpoints' shard queues.

use std::collections::BTreeMap;

use super::{DeliveryMessage, Topology};
use crate::ids::shard_of;
use crate::store::NewDelivery;
use uuid::Uuid;

/// Delivery ids per published message.
const DELIVERIES_PER_MESSAGE: usize = 500;

/// (queue, body) pairs: one or more messages per shard that has deliveries.
pub fn delivery_messages(
    topology: &Topology,
    deliveries: &[NewDelivery],
) -> Vec<(String, Vec<u8>)> {
    let mut by_shard: BTreeMap<u16, Vec<(Uuid, i32)>> = BTreeMap::new();
    for d in deliveries {
        by_shard
            .entry(shard_of(d.endpoint_id, topology.shards()))
            .or_default()
            .push((d.id, d.attempts));
    }
    let mut messages = Vec::new();
    for (shard, ids) in by_shard {
        for chunk in ids.chunks(DELIVERIES_PER_MESSAGE) {
            let body = serde_json::to_vec(&DeliveryMessage {
                deliveries: chunk.iter().map(|(id, _)| *id).collect(),
                attempts: Some(chunk.iter().map(|(_, n)| *n).collect()),
            })
            .unwrap_or_else(|_| unreachable!("ids always serialize"));
            messages.push((topology.delivery_queue(shard), body));
        }
    }
    messages
}
