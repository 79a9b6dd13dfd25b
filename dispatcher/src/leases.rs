//! The dispatcher's side of shard leases: which shards it consumes, which it is
//! draining because they exceed its fair share, and which it has drained and will
//! give back at the next heartbeat.

use std::collections::{HashMap, HashSet};

use hookrelay_core::store::Leases;
use tokio_util::sync::CancellationToken;

/// The shards this dispatcher consumes, drains and has drained.
#[derive(Default)]
pub struct ShardSet {
    pub consuming: HashMap<u16, CancellationToken>,
    /// Stopped because they exceed the fair share; given back once drained.
    draining: HashSet<u16>,
    pub drained: HashSet<u16>,
}

impl ShardSet {
    /// Follows a heartbeat: stops consumers of shards no longer held, drains those
    /// above the fair share, and returns the held shards to start consuming.
    pub fn apply(&mut self, leases: &Leases, session: &CancellationToken) -> Vec<u16> {
        self.consuming.retain(|shard, stop| {
            let held = leases.held.contains(shard);
            if !held {
                stop.cancel();
            }
            held
        });
        let mut active: Vec<u16> = self
            .consuming
            .keys()
            .filter(|s| !self.draining.contains(s))
            .copied()
            .collect();
        active.sort_unstable();
        while active.len() > leases.fair {
            let shard = active.pop().unwrap_or_default();
            self.consuming[&shard].cancel();
            self.draining.insert(shard);
        }
        let mut start = Vec::new();
        for &shard in &leases.held {
            let busy = self.consuming.contains_key(&shard) || self.drained.contains(&shard);
            if !busy && active.len() + start.len() < leases.fair {
                self.consuming.insert(shard, session.child_token());
                start.push(shard);
            }
        }
        start
    }

    /// A shard consumer finished: a drained one is given back at the next heartbeat.
    pub fn ended(&mut self, shard: Option<u16>) {
        let Some(shard) = shard else { return };
        self.consuming.remove(&shard);
        if self.draining.remove(&shard) {
            self.drained.insert(shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(held: &[u16], fair: usize) -> Leases {
        Leases { held: held.to_vec(), fair }
    }

    #[test]
    fn a_second_dispatcher_makes_the_first_drain_then_give_back_its_extra_shards() {
        let session = CancellationToken::new();
        let mut set = ShardSet::default();
        assert_eq!(
            set.apply(&leases(&[0, 1, 2, 3], 4), &session),
            vec![0, 1, 2, 3]
        );

        // Another dispatcher joined: the fair share is now two.
        assert!(set.apply(&leases(&[0, 1, 2, 3], 2), &session).is_empty());
        assert!(set.consuming[&2].is_cancelled() && set.consuming[&3].is_cancelled());
        assert!(!set.consuming[&0].is_cancelled());
        // Still draining: nothing to give back, nothing restarted.
        assert!(set.apply(&leases(&[0, 1, 2, 3], 2), &session).is_empty());
        assert!(set.drained.is_empty());

        set.ended(Some(2));
        set.ended(Some(3));
        assert_eq!(set.drained, HashSet::from([2, 3]));
    }

    #[test]
    fn a_lost_lease_stops_its_consumer_and_new_ones_start() {
        let session = CancellationToken::new();
        let mut set = ShardSet::default();
        set.apply(&leases(&[0, 1], 2), &session);
        let stop = set.consuming[&1].clone();
        assert_eq!(set.apply(&leases(&[0, 5], 2), &session), vec![5]);
        assert!(stop.is_cancelled(), "shard 1 is someone else's now");
        set.ended(Some(1));
        assert!(set.drained.is_empty(), "a lost shard is not given back");
    }
}
