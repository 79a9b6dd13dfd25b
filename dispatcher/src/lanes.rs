//! Per-endpoint lanes: each endpoint's rate limit (governor, with burst), cap on
//! requests in flight and count of slow requests. A shard has one active consumer in
//! the whole fleet, so these in-process limits hold across any number of
//! dispatchers. A delivery that would wait longer than `MAX_LANE_WAIT`, or whose
//! endpoint already has its fill of slow requests open, is parked in Postgres
//! instead of holding its shard's messages or the dispatcher's request slots: one
//! slow or throttled endpoint cannot stall the others.
//!
//! Request slots are shared fairly: an endpoint may hold at most its share of the
//! dispatcher's slots (`HOOKRELAY_ENDPOINT_SLOT_SHARE`), whatever its own
//! `max_in_flight`, and all of a tenant's endpoints together at most the tenant's
//! share (`HOOKRELAY_TENANT_SLOT_SHARE`), so a slow endpoint answering `200`
//! (which never opens a breaker) still cannot take every slot. A delivery waits
//! for its shares in memory (its own `max_in_flight` full parks it instead); the
//! sender counts that wait towards letting go of the message.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use hookrelay_core::model::CircuitState;
use hookrelay_signature::Secret;
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
    /// The endpoint's own `max_in_flight`: a delivery that finds it full parks.
    in_flight: Option<Arc<Semaphore>>,
    /// Its fair share of the dispatcher's request slots: a delivery waits for one.
    share: Arc<Semaphore>,
    /// Requests open for longer than the sender's slow mark, and how many may be.
    /// Shared with the lane that replaces this one when the endpoint's limits change.
    slow: Arc<AtomicUsize>,
    max_slow: usize,
    /// Seconds since the lanes' epoch when this lane was last handed out.
    touched: AtomicU64,
    /// The endpoint's signing secrets, decrypted once per change of its ciphertexts.
    keys: Mutex<Option<SigningKeys>>,
}

struct SigningKeys {
    current: Vec<u8>,
    previous: Vec<Vec<u8>>,
    secrets: Arc<[Secret]>,
}

/// Counts one slow request of a lane while it is alive.
pub struct SlowRequest(Arc<AtomicUsize>);

impl Drop for SlowRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<C: Clock + Clone> Lane<C> {
    /// `max_slow` applies when the endpoint sets no `max_in_flight` of its own;
    /// `fair_slots` caps its requests in flight whatever it set.
    pub fn new(
        settings: LaneSettings,
        clock: C,
        breaker: BreakerSettings,
        max_slow: usize,
        fair_slots: usize,
    ) -> Self {
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
        let own = positive(max_in_flight).map(|n| n.get() as usize);
        let in_flight = own.map(|n| Arc::new(Semaphore::new(n)));
        let fair_slots = fair_slots.clamp(1, Semaphore::MAX_PERMITS);
        let max_slow = own.unwrap_or(max_slow).min(fair_slots);
        Self {
            settings,
            breaker: Arc::new(Breaker::new(breaker)),
            limiter,
            clock,
            in_flight,
            share: Arc::new(Semaphore::new(fair_slots)),
            slow: Arc::default(),
            max_slow,
            touched: AtomicU64::new(0),
            keys: Mutex::new(None),
        }
    }

    /// The secrets that sign this endpoint's requests, current first, decrypted only
    /// when the stored ciphertexts changed since the last delivery (a rotation).
    /// `None` when the current secret cannot be read.
    pub fn signing_keys(
        &self,
        current: &[u8],
        previous: &[Vec<u8>],
        decrypt: impl Fn(&[u8]) -> Option<Secret>,
    ) -> Option<Arc<[Secret]>> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys
            .as_ref()
            .filter(|k| k.current == current && k.previous == previous)
        {
            return Some(k.secrets.clone());
        }
        let secrets: Arc<[Secret]> = std::iter::once(decrypt(current)?)
            .chain(previous.iter().filter_map(|c| decrypt(c)))
            .collect();
        *keys = Some(SigningKeys {
            current: current.to_vec(),
            previous: previous.to_vec(),
            secrets: secrets.clone(),
        });
        Some(secrets)
    }

    /// Whether the endpoint already has as many slow requests open as it may.
    pub fn slow_full(&self) -> bool {
        self.slow.load(Ordering::SeqCst) >= self.max_slow
    }

    /// Marks one request of this lane as slow until the guard drops.
    pub fn slow_request(&self) -> SlowRequest {
        self.slow.fetch_add(1, Ordering::SeqCst);
        SlowRequest(self.slow.clone())
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

    /// A slot of the endpoint's fair share of request slots (waits as long as it takes).
    pub async fn share_slot(&self) -> OwnedSemaphorePermit {
        self.share
            .clone()
            .acquire_owned()
            .await
            .expect("the share semaphore is never closed")
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

/// How many of `total` slots a share (0–1] gives, at least one.
pub fn share_of(total: usize, share: f64) -> usize {
    ((total as f64 * share).floor() as usize).clamp(1, total.max(1))
}

/// Every endpoint's lane in this dispatcher, rebuilt when its settings change, and
/// every tenant's share of the request slots.
pub struct Lanes {
    map: Mutex<HashMap<Uuid, Arc<Lane>>>,
    tenants: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    breaker: BreakerSettings,
    /// Slow requests allowed for endpoints that set no `max_in_flight`.
    max_slow: usize,
    /// Request slots one endpoint, and one tenant, may hold at once.
    endpoint_slots: usize,
    tenant_slots: usize,
    epoch: Instant,
}

impl Lanes {
    pub fn new(
        breaker: BreakerSettings,
        max_slow: u32,
        endpoint_slots: usize,
        tenant_slots: usize,
    ) -> Self {
        Self {
            map: Mutex::default(),
            tenants: Mutex::default(),
            breaker,
            max_slow: max_slow as usize,
            endpoint_slots: endpoint_slots.max(1),
            tenant_slots: tenant_slots.max(1),
            epoch: Instant::now(),
        }
    }

    /// A slot among the tenant's requests in flight (waits as long as it takes).
    pub async fn tenant_slot(&self, tenant: Uuid) -> OwnedSemaphorePermit {
        let sem = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            tenants
                .entry(tenant)
                .or_insert_with(|| Arc::new(Semaphore::new(self.tenant_slots)))
                .clone()
        };
        sem.acquire_owned()
            .await
            .expect("tenant semaphores are never closed")
    }

    /// Forgets lanes unused for `idle` whose breaker is closed and that nothing holds,
    /// so memory follows the endpoints in use, not every endpoint ever seen. A
    /// forgotten lane's limiter had refilled long ago; its breaker starts afresh.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = self.epoch.elapsed().as_secs();
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, sem| Arc::strong_count(sem) > 1);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, lane| {
            let unused = now.saturating_sub(lane.touched.load(Ordering::Relaxed)) >= idle.as_secs();
            let closed = lane.breaker.view().state == CircuitState::Closed;
            !(unused && closed && Arc::strong_count(lane) == 1)
        });
        before - map.len()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn get(&self, endpoint: Uuid, settings: LaneSettings) -> Arc<Lane> {
        let touched = self.epoch.elapsed().as_secs();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&endpoint) {
            Some(lane) if lane.settings == settings => {
                lane.touched.store(touched, Ordering::Relaxed);
                lane.clone()
            }
            previous => {
                let mut lane = Lane::new(
                    settings,
                    DefaultClock::default(),
                    self.breaker.clone(),
                    self.max_slow,
                    self.endpoint_slots,
                );
                // New limits keep the endpoint's breaker and its count of slow
                // requests, which are still open.
                if let Some(old) = previous {
                    lane.breaker = old.breaker.clone();
                    lane.slow = old.slow.clone();
                }
                lane.touched = AtomicU64::new(touched);
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
    fn signing_keys_are_decrypted_again_only_when_they_change() {
        let lane = Lane::new(
            (None, None, None),
            DefaultClock::default(),
            BreakerSettings::default(),
            32,
            usize::MAX,
        );
        let decrypted = std::cell::Cell::new(0);
        let decrypt = |c: &[u8]| {
            decrypted.set(decrypted.get() + 1);
            Secret::from_bytes(c.to_vec()).ok()
        };
        let (a, b) = (vec![1u8; 32], vec![2u8; 32]);
        let first = lane.signing_keys(&a, &[], decrypt).expect("readable");
        let again = lane.signing_keys(&a, &[], decrypt).expect("readable");
        assert_eq!((first.len(), again.len(), decrypted.get()), (1, 1, 1));
        let rotated = lane
            .signing_keys(&b, std::slice::from_ref(&a), decrypt)
            .expect("readable");
        assert_eq!(rotated.len(), 2);
        assert_eq!(rotated[0].as_bytes(), &b[..]);
        assert_eq!(decrypted.get(), 3);
        assert!(
            lane.signing_keys(&[0u8; 3], &[], decrypt).is_none(),
            "unreadable"
        );
    }

    #[test]
    fn the_rate_limit_allows_the_burst_then_the_rate() {
        let clock = FakeRelativeClock::default();
        let lane = Lane::new(
            (Some(5), Some(2), None),
            clock.clone(),
            BreakerSettings::default(),
            32,
            usize::MAX,
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
            32,
            usize::MAX,
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
            32,
            usize::MAX,
        );
        let held = lane.slot().await.expect("free").expect("capped");
        let started = tokio::time::Instant::now();
        assert!(lane.slot().await.is_err(), "still full after the wait");
        assert_eq!(started.elapsed(), MAX_LANE_WAIT);
        drop(held);
        assert!(lane.slot().await.expect("free again").is_some());
    }

    #[test]
    fn slow_requests_fill_the_lane_until_they_end() {
        let lane = Lane::new(
            (None, None, None),
            FakeRelativeClock::default(),
            BreakerSettings::default(),
            2,
            usize::MAX,
        );
        let a = lane.slow_request();
        assert!(!lane.slow_full());
        let b = lane.slow_request();
        assert!(
            lane.slow_full(),
            "two slow requests fill a lane allowing two"
        );
        drop(a);
        assert!(!lane.slow_full());
        drop(b);
        let own_cap = Lane::new(
            (None, None, Some(3)),
            FakeRelativeClock::default(),
            BreakerSettings::default(),
            1,
            usize::MAX,
        );
        let _held: Vec<_> = (0..2).map(|_| own_cap.slow_request()).collect();
        assert!(
            !own_cap.slow_full(),
            "an endpoint's own max_in_flight replaces the default"
        );
    }

    #[test]
    fn idle_lanes_are_forgotten_unless_held_or_open() {
        let lanes = Lanes::new(BreakerSettings::default(), 32, 1024, 1024);
        let (idle, held) = (Uuid::from_u128(1), Uuid::from_u128(2));
        lanes.get(idle, (None, None, None));
        let _held = lanes.get(held, (None, None, None));
        assert_eq!(
            lanes.evict_idle(Duration::from_secs(3600)),
            0,
            "both used just now"
        );
        assert_eq!(
            lanes.evict_idle(Duration::ZERO),
            1,
            "only the unheld lane goes"
        );
        assert_eq!(lanes.len(), 1);

        let failing = Uuid::from_u128(3);
        let lane = lanes.get(failing, (None, None, None));
        for _ in 0..BreakerSettings::default().consecutive_failures {
            lane.breaker.done(true, false);
        }
        assert_eq!(lane.breaker.view().state, CircuitState::Open);
        drop(lane);
        lanes.evict_idle(Duration::ZERO);
        assert_eq!(lanes.len(), 2, "an open breaker is kept");
    }

    #[test]
    fn a_share_is_at_least_one_slot_and_at_most_all() {
        assert_eq!(share_of(16, 0.25), 4);
        assert_eq!(share_of(16, 1.0), 16);
        assert_eq!(share_of(3, 0.1), 1);
        assert_eq!(share_of(1024, 0.5), 512);
    }

    #[tokio::test]
    async fn an_endpoint_holds_no_more_than_its_share_whatever_its_own_cap() {
        let lanes = Lanes::new(BreakerSettings::default(), 32, 4, 8);
        let lane = lanes.get(Uuid::from_u128(1), (None, None, Some(100)));
        let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| lane.share_slot())).await;
        assert_eq!(held.len(), 4);
        let fifth = tokio::time::timeout(Duration::from_millis(50), lane.share_slot()).await;
        assert!(fifth.is_err(), "a fifth slot waits for one of the four");
        drop(held);
        let tenant = Uuid::from_u128(9);
        let mut slots = Vec::new();
        for _ in 0..8 {
            slots.push(lanes.tenant_slot(tenant).await);
        }
        let ninth =
            tokio::time::timeout(Duration::from_millis(50), lanes.tenant_slot(tenant)).await;
        assert!(ninth.is_err(), "the tenant holds its share");
        let other = tokio::time::timeout(
            Duration::from_millis(50),
            lanes.tenant_slot(Uuid::from_u128(10)),
        )
        .await;
        assert!(other.is_ok(), "another tenant is not held back");
    }

    #[test]
    fn new_limits_keep_the_count_of_slow_requests_still_open() {
        let lanes = Lanes::new(BreakerSettings::default(), 2, 1024, 1024);
        let id = Uuid::from_u128(1);
        let before = lanes.get(id, (None, None, None));
        let _a = before.slow_request();
        let _b = before.slow_request();
        assert!(before.slow_full());
        let after = lanes.get(id, (Some(50), None, None));
        assert!(!Arc::ptr_eq(&before, &after), "rebuilt for the new rate");
        assert!(after.slow_full(), "the two open slow requests still count");
        drop(_a);
        assert!(!after.slow_full());
    }

    #[test]
    fn lanes_are_rebuilt_when_settings_change() {
        let lanes = Lanes::new(BreakerSettings::default(), 32, 1024, 1024);
        let id = Uuid::from_u128(1);
        let a = lanes.get(id, (Some(5), None, None));
        assert!(Arc::ptr_eq(&a, &lanes.get(id, (Some(5), None, None))));
        assert!(!Arc::ptr_eq(&a, &lanes.get(id, (Some(6), None, None))));
    }
}
