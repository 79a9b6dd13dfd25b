//! Gates and shares under a fake clock: rates, caps, slow requests, eviction.

use super::*;
use governor::clock::FakeRelativeClock;

/// A gate on `clock` with `max_slow` slow requests and every slot to share.
fn new_gate<C: Clock + Clone>(limits: EndpointLimits, clock: C, max_slow: usize) -> Gate<C> {
    Gate::new(
        limits,
        clock,
        BreakerSettings::default(),
        max_slow,
        usize::MAX,
    )
}

/// Rate per second, burst, max in flight; 0: none.
fn limits(rate: u32, burst: u32, max_in_flight: u32) -> EndpointLimits {
    EndpointLimits {
        rate_per_second: NonZeroU32::new(rate),
        burst: NonZeroU32::new(burst),
        max_in_flight: NonZeroU32::new(max_in_flight),
    }
}

#[test]
fn the_rate_limit_allows_the_burst_then_the_rate() {
    let clock = FakeRelativeClock::default();
    let gate = new_gate(limits(5, 2, 0), clock.clone(), 32);
    assert_eq!(gate.admit(), Ok(()));
    assert_eq!(gate.admit(), Ok(()));
    let wait = gate.admit().expect_err("burst spent");
    assert_eq!(wait, Duration::from_millis(200), "one cell per 1/5 s");
    clock.advance(Duration::from_millis(199));
    assert!(gate.admit().is_err());
    clock.advance(Duration::from_millis(1));
    assert_eq!(gate.admit(), Ok(()));
    assert!(gate.admit().is_err());
    assert_eq!(gate.spacing(), Duration::from_millis(200));
}

#[test]
fn without_settings_everything_passes() {
    let gate = new_gate(limits(0, 0, 0), FakeRelativeClock::default(), 32);
    for _ in 0..1000 {
        assert_eq!(gate.admit(), Ok(()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_gate_gives_up_after_the_wait_and_frees_on_release() {
    let gate = new_gate(limits(0, 0, 1), FakeRelativeClock::default(), 32);
    let OwnSlot::Held(held) = gate.own_slot().await else {
        panic!("free and capped")
    };
    let started = tokio::time::Instant::now();
    assert!(
        matches!(gate.own_slot().await, OwnSlot::Full),
        "still full after the wait"
    );
    assert_eq!(started.elapsed(), MAX_GATE_WAIT);
    drop(held);
    assert!(
        matches!(gate.own_slot().await, OwnSlot::Held(_)),
        "free again"
    );
}

#[test]
fn slow_requests_fill_the_gate_until_they_end() {
    let gate = new_gate(limits(0, 0, 0), FakeRelativeClock::default(), 2);
    let a = gate.slow_request();
    assert!(!gate.slow_full());
    let b = gate.slow_request();
    assert!(
        gate.slow_full(),
        "two slow requests fill a gate allowing two"
    );
    drop(a);
    assert!(!gate.slow_full());
    drop(b);
    let own_cap = new_gate(limits(0, 0, 3), FakeRelativeClock::default(), 1);
    let _held: Vec<_> = (0..2).map(|_| own_cap.slow_request()).collect();
    assert!(
        !own_cap.slow_full(),
        "an endpoint's own max_in_flight replaces the default"
    );
}

#[test]
fn idle_gates_are_forgotten_unless_held_or_open() {
    let admission = Admission::new(BreakerSettings::default(), 32, 1024, 1024);
    let (idle, held) = (Uuid::from_u128(1), Uuid::from_u128(2));
    admission.gate(idle, limits(0, 0, 0));
    let _held = admission.gate(held, limits(0, 0, 0));
    assert_eq!(
        admission.evict_idle(Duration::from_secs(3600)),
        0,
        "both used just now"
    );
    assert_eq!(
        admission.evict_idle(Duration::ZERO),
        1,
        "only the unheld gate goes"
    );
    assert_eq!(admission.len(), 1);

    let failing = Uuid::from_u128(3);
    let gate = admission.gate(failing, limits(0, 0, 0));
    for _ in 0..BreakerSettings::default().consecutive_failures {
        gate.breaker.done(true, false);
    }
    assert_eq!(gate.breaker.view().state, CircuitState::Open);
    drop(gate);
    admission.evict_idle(Duration::ZERO);
    assert_eq!(admission.len(), 2, "an open breaker is kept");
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
    let admission = Admission::new(BreakerSettings::default(), 32, 4, 8);
    let gate = admission.gate(Uuid::from_u128(1), limits(0, 0, 100));
    let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| gate.share_slot())).await;
    assert_eq!(held.len(), 4);
    let fifth = tokio::time::timeout(Duration::from_millis(50), gate.share_slot()).await;
    assert!(fifth.is_err(), "a fifth slot waits for one of the four");
    drop(held);
    let tenant = Uuid::from_u128(9);
    let mut slots = Vec::new();
    for _ in 0..8 {
        slots.push(admission.tenant_slot(tenant).await);
    }
    let ninth =
        tokio::time::timeout(Duration::from_millis(50), admission.tenant_slot(tenant)).await;
    assert!(ninth.is_err(), "the tenant holds its share");
    let other = tokio::time::timeout(
        Duration::from_millis(50),
        admission.tenant_slot(Uuid::from_u128(10)),
    )
    .await;
    assert!(other.is_ok(), "another tenant is not held back");
}

#[test]
fn new_limits_keep_the_count_of_slow_requests_still_open() {
    let admission = Admission::new(BreakerSettings::default(), 2, 1024, 1024);
    let id = Uuid::from_u128(1);
    let before = admission.gate(id, limits(0, 0, 0));
    let _a = before.slow_request();
    let _b = before.slow_request();
    assert!(before.slow_full());
    let after = admission.gate(id, limits(50, 0, 0));
    assert!(!Arc::ptr_eq(&before, &after), "rebuilt for the new rate");
    assert!(after.slow_full(), "the two open slow requests still count");
    drop(_a);
    assert!(!after.slow_full());
}

#[test]
fn gates_are_rebuilt_when_limits_change() {
    let admission = Admission::new(BreakerSettings::default(), 32, 1024, 1024);
    let id = Uuid::from_u128(1);
    let a = admission.gate(id, limits(5, 0, 0));
    assert!(Arc::ptr_eq(&a, &admission.gate(id, limits(5, 0, 0))));
    assert!(!Arc::ptr_eq(&a, &admission.gate(id, limits(6, 0, 0))));
}
