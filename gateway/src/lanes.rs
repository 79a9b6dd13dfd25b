//! Which ingest lane a tenant's events take. While several tenants send, a tenant
//! sending more than its fair share of this gateway's events (and more than
//! `HOOKRELAY_TENANT_PRIORITY_RATE`) has its excess published to the bulk lane,
//! which the router drains beside the priority lane: one tenant's burst queues
//! behind itself, not in front of every other tenant's events.
//!
//! Rates are estimated over a sliding second (the last whole second, weighted by
//! how much of it the window still covers, plus the current one), per gateway.

use std::collections::HashMap;
use std::time::Duration;

use hookrelay_core::queue::IngestLane;
use tokio::time::Instant;
use uuid::Uuid;

const WINDOW: Duration = Duration::from_secs(1);

pub struct LaneChooser {
    /// Events per second a tenant may always send in the priority lane; 0: no lanes.
    floor: u64,
    started: Instant,
    current: HashMap<Uuid, u64>,
    previous: HashMap<Uuid, u64>,
    current_total: u64,
    previous_total: u64,
}

impl LaneChooser {
    pub fn new(floor: u32, now: Instant) -> Self {
        Self {
            floor: u64::from(floor),
            started: now,
            current: HashMap::new(),
            previous: HashMap::new(),
            current_total: 0,
            previous_total: 0,
        }
    }

    /// Counts `n` events of `tenant` accepted at `now` and says which lane they take.
    pub fn choose(&mut self, tenant: Uuid, n: usize, now: Instant) -> IngestLane {
        if self.floor == 0 {
            return IngestLane::Priority;
        }
        if n == 0 {
            return IngestLane::Priority;
        }
        self.advance(now);
        let n = n as u64;
        *self.current.entry(tenant).or_default() += n;
        self.current_total += n;
        let active = self.current.len().max(self.previous.len()) as f64;
        if active < 2.0 {
            return IngestLane::Priority;
        }
        // How much of the previous second the sliding window still covers.
        let weight = 1.0 - now.duration_since(self.started).as_secs_f64() / WINDOW.as_secs_f64();
        let rate = |current: u64, previous: u64| current as f64 + previous as f64 * weight;
        let mine = rate(
            self.current[&tenant],
            self.previous.get(&tenant).copied().unwrap_or(0),
        );
        let fair = rate(self.current_total, self.previous_total) / active;
        if mine > fair.max(self.floor as f64) {
            IngestLane::Bulk
        } else {
            IngestLane::Priority
        }
    }

    fn advance(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.started);
        if elapsed < WINDOW {
            return;
        }
        if elapsed < 2 * WINDOW {
            self.previous = std::mem::take(&mut self.current);
            self.previous_total = std::mem::take(&mut self.current_total);
            self.started += WINDOW;
        } else {
            // Idle for more than a window: nothing recent to weigh.
            self.previous.clear();
            self.current.clear();
            self.previous_total = 0;
            self.current_total = 0;
            self.started = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> (Uuid, Uuid) {
        (Uuid::new_v4(), Uuid::new_v4())
    }

    /// Sends `loud` and `quiet` events per 10 ms tick for `ticks` ticks; returns the
    /// lanes of the last tick.
    fn run(
        chooser: &mut LaneChooser,
        (a, b): (Uuid, Uuid),
        (loud, quiet): (usize, usize),
        ticks: u32,
        start: Instant,
    ) -> (IngestLane, IngestLane) {
        let mut lanes = (IngestLane::Priority, IngestLane::Priority);
        for i in 0..ticks {
            let now = start + Duration::from_millis(10) * i;
            lanes.0 = chooser.choose(a, loud, now);
            if quiet > 0 {
                lanes.1 = chooser.choose(b, quiet, now);
            }
        }
        lanes
    }

    #[test]
    fn a_lone_tenant_stays_in_the_priority_lane_however_fast() {
        let start = Instant::now();
        let mut chooser = LaneChooser::new(500, start);
        let (a, _) = tenants();
        for i in 0..300 {
            let lane = chooser.choose(a, 1000, start + Duration::from_millis(10) * i);
            assert_eq!(lane, IngestLane::Priority);
        }
    }

    #[test]
    fn a_tenant_far_above_its_share_goes_to_the_bulk_lane_and_the_quiet_one_does_not() {
        let start = Instant::now();
        let mut chooser = LaneChooser::new(500, start);
        // 2,000/s against 100/s, for three seconds.
        let lanes = run(&mut chooser, tenants(), (20, 1), 300, start);
        assert_eq!(lanes, (IngestLane::Bulk, IngestLane::Priority));
    }

    #[test]
    fn tenants_under_the_floor_are_never_demoted() {
        let start = Instant::now();
        let mut chooser = LaneChooser::new(500, start);
        // 400/s against 100/s: far above its share, but under the floor.
        let lanes = run(&mut chooser, tenants(), (4, 1), 300, start);
        assert_eq!(lanes, (IngestLane::Priority, IngestLane::Priority));
    }

    #[test]
    fn the_bulk_lane_is_left_once_the_others_stop() {
        let start = Instant::now();
        let mut chooser = LaneChooser::new(500, start);
        let pair = tenants();
        assert_eq!(
            run(&mut chooser, pair, (20, 1), 300, start).0,
            IngestLane::Bulk
        );
        // The quiet tenant stops; two seconds later the loud one is alone again.
        let later = start + Duration::from_secs(3);
        let lanes = run(&mut chooser, pair, (20, 0), 200, later);
        assert_eq!(lanes.0, IngestLane::Priority);
    }

    #[test]
    fn zero_turns_the_lanes_off() {
        let start = Instant::now();
        let mut chooser = LaneChooser::new(0, start);
        let lanes = run(&mut chooser, tenants(), (1000, 1), 300, start);
        assert_eq!(lanes, (IngestLane::Priority, IngestLane::Priority));
    }
}
