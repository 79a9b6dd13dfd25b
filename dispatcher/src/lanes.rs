//! Per-endpoint lanes: each endpoint's rate limit (governor, with burst) and cap on
//! requests in flight. A shard has one active consumer in the whole fleet, so these
//! in-process limits hold across any number of dispatchers. A delivery that would
//! wait longer than `MAX_LANE_WAIT` is parked in Postgres instead of holding its
//! shard's messages: one slow or throttled endpoint cannot stall the others.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::breaker::{Breaker, BreakerSettings};

/// Longest a delivery waits in memory for its lane before it is parked.
pub const MAX_LANE_WAIT: Duration = Duration::from_millis(250);

/// The settings a lane is built from: (rate per second, burst, max in flight).
pub type LaneSettings = (Option<i32>, Option<i32>, Option<i32>);

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct Lane<C: Clock = DefaultClock> {
    settings: LaneSettings,
    pub breaker: Arc<Breaker>,
    limiter: Option<Limiter<C>>,
    clock: C,
    in_flight: Option<Arc<Semaphore>>,
}

impl<C: Clock + Clone> Lane<C> {
    pub fn new(settings: LaneSettings, clock: C, breaker: BreakerSettings) -> Self {
        let (rate, burst, max_in_flight) = settings;
        let positive = |v: Option<i32>| {
            v.and_then(|n| u32::try_from(n).ok())
                .and_then(NonZeroU32::new)
        };
        let limiter = positive(rate).map(|rate| {
            let burst = positive(burst).unwrap_or(rate);
            RateLimiter::direct_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            )
        });
        let in_flight = positive(max_in_flight).map(|n| Arc::new(Semaphore::new(n.get() as usize)));
        Self {
            settings,
            breaker: Arc::new(Breaker::new(breaker)),
            limiter,
            clock,
            in_flight,
        }
    }

    /// `Ok` when a request may go now; otherwise how long until one may.
    pub fn admit(&self) -> Result<(), Duration> {
        match &self.limiter {
            None => Ok(()),
            Some(l) => l
                .check()
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// A slot among the endpoint's requests in flight, waiting at most `MAX_LANE_WAIT`.
    /// `Ok(None)`: the endpoint has no cap. `Err(())`: still full, park the delivery.
    pub async fn slot(&self) -> Result<Option<OwnedSemaphorePermit>, ()> {
        match &self.in_flight {
            None => Ok(None),
            Some(sem) => {
                match tokio::time::timeout(MAX_LANE_WAIT, sem.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Ok(Some(permit)),
                    _ => Err(()),
                }
            }
        }
    }

    /// Spacing between parked deliveries so they come back at the lane's pace.
    pub fn spacing(&self) -> Duration {
        match self
            .settings
            .0
            .and_then(|r| u32::try_from(r).ok())
            .filter(|r| *r > 0)
        {
            Some(rate) => Duration::from_secs(1) / rate,
            None => Duration::from_millis(50),
        }
    }
}

/// Every endpoint's lane in this dispatcher, rebuilt when its settings change.
pub struct Lanes {
    map: Mutex<HashMap<Uuid, Arc<Lane>>>,
    breaker: BreakerSettings,
    /// In-flight cap for endpoints that set none.
    default_max_in_flight: Option<i32>,
}

impl Lanes {
    pub fn new(breaker: BreakerSettings, default_max_in_flight: Option<u32>) -> Self {
        Self {
            map: Mutex::default(),
            breaker,
            default_max_in_flight: default_max_in_flight.and_then(|n| i32::try_from(n).ok()),
        }
    }

    pub fn get(&self, endpoint: Uuid, settings: LaneSettings) -> Arc<Lane> {
        let settings = (
            settings.0,
            settings.1,
            settings.2.or(self.default_max_in_flight),
        );
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&endpoint) {
            Some(lane) if lane.settings == settings => lane.clone(),
            previous => {
                let mut lane = Lane::new(settings, DefaultClock::default(), self.breaker.clone());
                // New limits keep the endpoint's breaker and its history.
                if let Some(old) = previous {
                    lane.breaker = old.breaker.clone();
                }
                let lane = Arc::new(lane);
                map.insert(endpoint, lane.clone());
                lane
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn the_rate_limit_allows_the_burst_then_the_rate() {
        let clock = FakeRelativeClock::default();
        let lane = Lane::new(
            (Some(5), Some(2), None),
            clock.clone(),
            BreakerSettings::default(),
        );
        assert_eq!(lane.admit(), Ok(()));
        assert_eq!(lane.admit(), Ok(()));
        let wait = lane.admit().expect_err("burst spent");
        assert_eq!(wait, Duration::from_millis(200), "one cell per 1/5 s");
        clock.advance(Duration::from_millis(199));
        assert!(lane.admit().is_err());
        clock.advance(Duration::from_millis(1));
        assert_eq!(lane.admit(), Ok(()));
        assert!(lane.admit().is_err());
        assert_eq!(lane.spacing(), Duration::from_millis(200));
    }

    #[test]
    fn without_settings_everything_passes() {
        let lane = Lane::new(
            (None, None, None),
            FakeRelativeClock::default(),
            BreakerSettings::default(),
        );
        for _ in 0..1000 {
            assert_eq!(lane.admit(), Ok(()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_lane_gives_up_after_the_wait_and_frees_on_release() {
        let lane = Lane::new(
            (None, None, Some(1)),
            FakeRelativeClock::default(),
            BreakerSettings::default(),
        );
        let held = lane.slot().await.expect("free").expect("capped");
        let started = tokio::time::Instant::now();
        assert!(lane.slot().await.is_err(), "still full after the wait");
        assert_eq!(started.elapsed(), MAX_LANE_WAIT);
        drop(held);
        assert!(lane.slot().await.expect("free again").is_some());
    }

    #[test]
    fn lanes_are_rebuilt_when_settings_change() {
        let lanes = Lanes::new(BreakerSettings::default(), Some(64));
        let id = Uuid::from_u128(1);
        let a = lanes.get(id, (Some(5), None, None));
        assert!(Arc::ptr_eq(&a, &lanes.get(id, (Some(5), None, None))));
        assert!(!Arc::ptr_eq(&a, &lanes.get(id, (Some(6), None, None))));
    }
}
