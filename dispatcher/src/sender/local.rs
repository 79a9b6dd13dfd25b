//! Deliveries the router stored for a shard this process consumes go straight to
//! that shard's sender, in memory, instead of through the shard queue: one publish,
//! confirm, delivery and ack fewer per message. Their rows are committed before the
//! hand-over and fall due again after `HOOKRELAY_UNSENT_AFTER` unless an attempt
//! finishes them, so a process that dies holding them loses nothing; the claim
//! still keeps every delivery to one sender. Only work that fits the load budget
//! at once is handed over: the rest takes the shard queue, which stays the buffer
//! under load and the path for every other dispatcher's shards.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use hookrelay_core::ids::shard_of;
use hookrelay_core::store::NewDelivery;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::Sender;

/// Most deliveries in one hand-over (as in one shard message).
const PER_HAND_OVER: usize = 500;

/// The shards this process consumes right now, with what their handlers run under.
#[derive(Default)]
pub struct LocalShards {
    shards: RwLock<HashMap<u16, Consuming>>,
}

#[derive(Clone)]
struct Consuming {
    /// The shard consumer's stop: handlers see shutdown through it.
    cancel: CancellationToken,
    /// The shard's handlers, drained before the shard is released.
    local: TaskTracker,
    /// Every handler of the process, waited for on shutdown.
    tracker: TaskTracker,
    /// The shard queue's messages in hand (received, not yet settled).
    queued: Arc<AtomicUsize>,
}

/// One of a shard queue's messages in hand, until dropped.
pub struct InHand(Arc<AtomicUsize>);

impl Drop for InHand {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LocalShards {
    /// `shard` is consumed here until the returned guard is dropped. Once it is,
    /// no hand-over to the shard is being spawned, so draining `local` covers
    /// every one.
    pub fn register(
        &self,
        shard: u16,
        cancel: CancellationToken,
        local: TaskTracker,
        tracker: TaskTracker,
    ) -> Registered<'_> {
        let queued = Arc::new(AtomicUsize::new(0));
        let consuming = Consuming { cancel, local, tracker, queued: queued.clone() };
        self.write().insert(shard, consuming);
        Registered { shards: self, shard, queued }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u16, Consuming>> {
        self.shards.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A shard consumed here; dropping it ends the hand-overs to it.
pub struct Registered<'a> {
    shards: &'a LocalShards,
    shard: u16,
    queued: Arc<AtomicUsize>,
}

impl Registered<'_> {
    /// A message of the shard queue is in hand until the returned guard drops.
    pub fn in_hand(&self) -> InHand {
        self.queued.fetch_add(1, Ordering::Relaxed);
        InHand(self.queued.clone())
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        // Only its own entry: a consumer of the same shard started while this one
        // drained (the lease lost and taken again) keeps its registration.
        let mut shards = self.shards.write();
        if shards
            .get(&self.shard)
            .is_some_and(|c| Arc::ptr_eq(&c.queued, &self.queued))
        {
            shards.remove(&self.shard);
        }
    }
}

impl Sender {
    /// Hands the deliveries of shards consumed here to their senders and returns
    /// the rest, for the shard queues.
    pub fn hand_over(
        self: &Arc<Self>,
        deliveries: Vec<NewDelivery>,
        bulk: bool,
    ) -> Vec<NewDelivery> {
        let shards = self.local.shards.read().unwrap_or_else(|e| e.into_inner());
        if shards.is_empty() {
            return deliveries;
        }
        let count = self.topology.shards();
        let mut here: BTreeMap<u16, Vec<NewDelivery>> = BTreeMap::new();
        let mut rest = Vec::new();
        for d in deliveries {
            let shard = shard_of(d.endpoint_id, count);
            match shards.get(&shard) {
                Some(c) if !c.cancel.is_cancelled() && c.queued.load(Ordering::Relaxed) == 0 => {
                    here.entry(shard).or_default().push(d)
                }
                _ => rest.push(d),
            }
        }
        for (shard, group) in here {
            let consuming = &shards[&shard];
            let mut chunks = group.chunks(PER_HAND_OVER);
            for chunk in chunks.by_ref() {
                let Some(room) = self.budget.try_deliveries(chunk.len()) else {
                    rest.extend_from_slice(chunk);
                    break;
                };
                let ids: Vec<Uuid> = chunk.iter().map(|d| d.id).collect();
                let attempts: Vec<i32> = chunk.iter().map(|d| d.attempts).collect();
                let handler = self.clone().deliver(
                    super::Source::Local,
                    ids,
                    Some(attempts),
                    bulk,
                    room,
                    consuming.cancel.clone(),
                    consuming.tracker.clone(),
                );
                consuming
                    .tracker
                    .spawn(consuming.local.track_future(handler));
            }
            for chunk in chunks {
                rest.extend_from_slice(chunk);
            }
        }
        rest
    }
}
