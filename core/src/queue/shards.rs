//! Groups deliveries into messages for their endpoints' shard queues.

use std::collections::BTreeMap;

use super::{DeliveryMessage, IngestLane, Topology};
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
    lane_delivery_messages(topology, deliveries, IngestLane::Priority)
}

/// Like `delivery_messages`, marked with the ingest lane the deliveries came from.
pub fn lane_delivery_messages(
    topology: &Topology,
    deliveries: &[NewDelivery],
    lane: IngestLane,
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
                bulk: lane == IngestLane::Bulk,
            })
            .expect("ids always serialize");
            messages.push((topology.delivery_queue(shard), body));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane_of(body: &[u8]) -> bool {
        serde_json::from_slice::<DeliveryMessage>(body)
            .expect("a delivery message")
            .bulk
    }

    #[test]
    fn messages_say_which_lane_their_deliveries_came_from() {
        let topology = Topology::new("t", 4);
        let deliveries: Vec<NewDelivery> = (0..3)
            .map(|_| NewDelivery {
                id: Uuid::new_v4(),
                endpoint_id: Uuid::new_v4(),
                attempts: 0,
            })
            .collect();
        let bulk = lane_delivery_messages(&topology, &deliveries, IngestLane::Bulk);
        let priority = delivery_messages(&topology, &deliveries);
        assert!(!bulk.is_empty() && bulk.iter().all(|(_, b)| lane_of(b)));
        assert!(!priority.is_empty() && priority.iter().all(|(_, b)| !lane_of(b)));
        // Messages without the mark (older ones, the scheduler's) are not bulk.
        assert!(
            !priority
                .iter()
                .any(|(_, b)| b.windows(4).any(|w| w == b"bulk"))
        );
    }
}
