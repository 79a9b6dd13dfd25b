//! Admission: each endpoint's gate holds its rate limit (governor, with burst),
//! cap on requests in flight, count of slow requests and circuit breaker. A shard has one active consumer in
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::breaker::{Breaker, BreakerSettings};

/// Longest a delivery waits in memory at its gate before it is parked.
pub const MAX_GATE_WAIT: Duration = Duration::from_millis(250);

/// An endpoint's own limits; none set means none applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointLimits {
    pub rate_per_second: Option<NonZeroU32>,
    /// Requests the rate allows at once after a quiet spell (default: the rate).
    pub burst: Option<NonZeroU32>,
    pub max_in_flight: Option<NonZeroU32>,
}

impl EndpointLimits {
    /// From the stored columns, where zero or a negative number means none.
    pub fn stored(
        rate_per_second: Option<i32>,
        burst: Option<i32>,
        max_in_flight: Option<i32>,
    ) -> Self {
        let positive = |v: Option<i32>| {
            v.and_then(|n| u32::try_from(n).ok())
                .and_then(NonZeroU32::new)
        };
        Self {
            rate_per_second: positive(rate_per_second),
            burst: positive(burst),
            max_in_flight: positive(max_in_flight),
        }
    }
}

/// A slot among an endpoint's own requests in flight.
pub enum OwnSlot {
    /// The endpoint sets no cap.
    Uncapped,
    Held(
        #[allow(dead_code, reason = "held, not read: the slot frees when it drops")]
        OwnedSemaphorePermit,
    ),
    /// Still full after `MAX_GATE_WAIT`: park the delivery.
    Full,
}

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One endpoint's admission.
pub struct Gate<C: Clock = DefaultClock> {
    limits: EndpointLimits,
    pub breaker: Arc<Breaker>,
    limiter: Option<Limiter<C>>,
    clock: C,
    /// The endpoint's own `max_in_flight`: a delivery that finds it full parks.
    in_flight: Option<Arc<Semaphore>>,
    /// Its fair share of the dispatcher's request slots: a delivery waits for one.
    share: Arc<Semaphore>,
    /// Requests open for longer than the sender's slow mark, and how many may be.
    /// Shared with the gate that replaces this one when the endpoint's limits change.
    slow: Arc<AtomicUsize>,
    max_slow: usize,
    /// Seconds since the admission's epoch when this gate was last handed out.
    touched: AtomicU64,
}

/// Counts one slow request of a gate while it is alive.
pub struct SlowRequest(Arc<AtomicUsize>);

impl Drop for SlowRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<C: Clock + Clone> Gate<C> {
    /// `max_slow` applies when the endpoint sets no `max_in_flight` of its own;
    /// `fair_slots` caps its requests in flight whatever it set.
    pub fn new(
        limits: EndpointLimits,
        clock: C,
        breaker: BreakerSettings,
        max_slow: usize,
        fair_slots: usize,
    ) -> Self {
        let limiter = limits.rate_per_second.map(|rate| {
            let burst = limits.burst.unwrap_or(rate);
            RateLimiter::direct_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            )
        });
        let own = limits.max_in_flight.map(|n| n.get() as usize);
        let in_flight = own.map(|n| Arc::new(Semaphore::new(n)));
        let fair_slots = fair_slots.clamp(1, Semaphore::MAX_PERMITS);
        let max_slow = own.unwrap_or(max_slow).min(fair_slots);
        Self {
            limits,
            breaker: Arc::new(Breaker::new(breaker)),
            limiter,
            clock,
            in_flight,
            share: Arc::new(Semaphore::new(fair_slots)),
            slow: Arc::default(),
            max_slow,
            touched: AtomicU64::new(0),
        }
    }

    /// Whether the endpoint already has as many slow requests open as it may.
    pub fn slow_full(&self) -> bool {
        self.slow.load(Ordering::SeqCst) >= self.max_slow
    }

    /// Marks one request of this endpoint as slow until the guard drops.
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

    /// A slot among the endpoint's requests in flight, waiting at most `MAX_GATE_WAIT`.
    pub async fn own_slot(&self) -> OwnSlot {
        let Some(sem) = &self.in_flight else {
            return OwnSlot::Uncapped;
        };
        match tokio::time::timeout(MAX_GATE_WAIT, sem.clone().acquire_owned()).await {
            Ok(Ok(permit)) => OwnSlot::Held(permit),
            _ => OwnSlot::Full,
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

    /// Spacing between parked deliveries so they come back at the endpoint's pace.
    pub fn spacing(&self) -> Duration {
        match self.limits.rate_per_second {
            Some(rate) => Duration::from_secs(1) / rate.get(),
            None => Duration::from_millis(50),
        }
    }
}

/// How many of `total` slots a share (0–1] gives, at least one.
pub fn share_of(total: usize, share: f64) -> usize {
    ((total as f64 * share).floor() as usize).clamp(1, total.max(1))
}

/// Every endpoint's gate in this dispatcher, rebuilt when its limits change, and
/// every tenant's share of the request slots.
pub struct Admission {
    gates: Mutex<HashMap<Uuid, Arc<Gate>>>,
    tenants: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    breaker: BreakerSettings,
    /// Slow requests allowed for endpoints that set no `max_in_flight`.
    max_slow: usize,
    /// Request slots one endpoint, and one tenant, may hold at once.
    endpoint_slots: usize,
    tenant_slots: usize,
    epoch: Instant,
}

impl Admission {
    pub fn new(
        breaker: BreakerSettings,
        max_slow: u32,
        endpoint_slots: usize,
        tenant_slots: usize,
    ) -> Self {
        Self {
            gates: Mutex::default(),
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

    /// Forgets gates unused for `idle` whose breaker is closed and that nothing holds,
    /// so memory follows the endpoints in use, not every endpoint ever seen. A
    /// forgotten gate's limiter had refilled long ago; its breaker starts afresh.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = self.epoch.elapsed().as_secs();
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, sem| Arc::strong_count(sem) > 1);
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let before = gates.len();
        gates.retain(|_, gate| {
            let unused = now.saturating_sub(gate.touched.load(Ordering::Relaxed)) >= idle.as_secs();
            let closed = gate.breaker.view().state == CircuitState::Closed;
            !(unused && closed && Arc::strong_count(gate) == 1)
        });
        before - gates.len()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.gates.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The endpoint's gate, built anew when its limits changed.
    pub fn gate(&self, endpoint: Uuid, limits: EndpointLimits) -> Arc<Gate> {
        let touched = self.epoch.elapsed().as_secs();
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        match gates.get(&endpoint) {
            Some(gate) if gate.limits == limits => {
                gate.touched.store(touched, Ordering::Relaxed);
                gate.clone()
            }
            previous => {
                let mut gate = Gate::new(
                    limits,
                    DefaultClock::default(),
                    self.breaker.clone(),
                    self.max_slow,
                    self.endpoint_slots,
                );
                // New limits keep the endpoint's breaker and its count of slow
                // requests, which are still open.
                if let Some(old) = previous {
                    gate.breaker = old.breaker.clone();
                    gate.slow = old.slow.clone();
                }
                gate.touched = AtomicU64::new(touched);
                let gate = Arc::new(gate);
                gates.insert(endpoint, gate.clone());
                gate
            }
        }
    }
}

#[cfg(test)]
mod tests;
