//! Per-endpoint circuit breaker (failsafe's state machine). It opens after a run of
//! consecutive failures or when the failure rate over a window is too high, stays
//! open for an exponentially growing time, then lets exactly one probe through;
//! the probe's success closes it. While it is open the endpoint's deliveries are
//! parked until the probe time without using attempts. Failures are responses of
//! 500 and above and requests that got no response; 4xx answers show the endpoint
//! is alive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use failsafe::backoff::{self, Exponential};
use failsafe::failure_policy::{
    self, ConsecutiveFailures, FailurePolicy, OrElse, SuccessRateOverTimeWindow,
};
use failsafe::{Instrument, StateMachine};
pub use hookrelay_core::config::BreakerSettings;
use hookrelay_core::model::CircuitState;

/// What the breaker shows through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitView {
    pub state: CircuitState,
    pub opened_at: Option<DateTime<Utc>>,
    pub next_probe_at: Option<DateTime<Utc>>,
}

struct Log {
    view: Mutex<CircuitView>,
    opens: Mutex<u32>,
    settings: BreakerSettings,
    changed: AtomicBool,
    /// Opened since it last closed.
    opened: AtomicBool,
    /// Opened from closed (not reopened by a failed probe), not yet reported.
    newly_opened: AtomicBool,
    /// Closed after having been open, not yet reported.
    reclosed: AtomicBool,
}

/// Records transitions (failsafe only tells us through its instrument).
struct Recorder(Arc<Log>);

impl Instrument for Recorder {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        let log = &self.0;
        let mut opens = log.opens.lock().unwrap_or_else(|p| p.into_inner());
        // failsafe's exponential backoff: start × 2^n, capped.
        let secs = (log.settings.open_for.as_secs().max(1) << (*opens).min(20))
            .min(log.settings.max_open.as_secs().max(1));
        *opens += 1;
        let now = Utc::now();
        *log.view.lock().unwrap_or_else(|p| p.into_inner()) = CircuitView {
            state: CircuitState::Open,
            opened_at: Some(now),
            next_probe_at: Some(now + chrono::Duration::seconds(secs as i64)),
        };
        if !log.opened.swap(true, Ordering::SeqCst) {
            log.newly_opened.store(true, Ordering::SeqCst);
        }
        log.changed.store(true, Ordering::SeqCst);
    }

    fn on_half_open(&self) {
        self.0.view.lock().unwrap_or_else(|p| p.into_inner()).state = CircuitState::HalfOpen;
        self.0.changed.store(true, Ordering::SeqCst);
    }

    fn on_closed(&self) {
        *self.0.opens.lock().unwrap_or_else(|p| p.into_inner()) = 0;
        *self.0.view.lock().unwrap_or_else(|p| p.into_inner()) = CircuitView {
            state: CircuitState::Closed,
            opened_at: None,
            next_probe_at: None,
        };
        if self.0.opened.swap(false, Ordering::SeqCst) {
            self.0.reclosed.store(true, Ordering::SeqCst);
        }
        self.0.changed.store(true, Ordering::SeqCst);
    }
}

type Policy = OrElse<ConsecutiveFailures<Exponential>, SuccessRateOverTimeWindow<Exponential>>;

pub struct Breaker {
    machine: StateMachine<Policy, Recorder>,
    log: Arc<Log>,
    probing: AtomicBool,
    /// Set by every failure (and at start, when the stored state is unknown); lets a
    /// healthy endpoint skip the database write that clears its failure record.
    failing_mark: AtomicBool,
}

/// May a request go?
#[derive(Debug, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// The single probe of a half-open breaker: report its result with `done(.., true)`.
    Probe,
    /// Not now: try again after this long.
    Wait(Duration),
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        let open = settings.open_for.max(Duration::from_secs(1));
        let max = settings.max_open.max(open);
        let policy = failure_policy::consecutive_failures(
            settings.consecutive_failures.max(1),
            backoff::exponential(open, max),
        )
        .or_else(failure_policy::success_rate_over_time_window(
            (1.0 - settings.failure_rate).clamp(0.0, 1.0),
            settings.min_requests,
            settings.window,
            backoff::exponential(open, max),
        ));
        let log = Arc::new(Log {
            view: Mutex::new(CircuitView {
                state: CircuitState::Closed,
                opened_at: None,
                next_probe_at: None,
            }),
            opens: Mutex::new(0),
            settings,
            changed: AtomicBool::new(false),
            opened: AtomicBool::new(false),
            newly_opened: AtomicBool::new(false),
            reclosed: AtomicBool::new(false),
        });
        Self {
            machine: StateMachine::new(policy, Recorder(log.clone())),
            log,
            probing: AtomicBool::new(false),
            failing_mark: AtomicBool::new(true),
        }
    }

    pub fn permit(&self) -> Permit {
        if !self.machine.is_call_permitted() {
            let wait = self
                .view()
                .next_probe_at
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or(Duration::ZERO);
            return Permit::Wait(wait.max(Duration::from_millis(200)));
        }
        if self.view().state != CircuitState::HalfOpen {
            return Permit::Go;
        }
        // failsafe lets every call through while half-open: we allow one.
        if self
            .probing
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            Permit::Probe
        } else {
            Permit::Wait(Duration::from_millis(500))
        }
    }

    /// Reports an attempt's outcome (`failed`: 5xx or no response).
    pub fn done(&self, failed: bool, was_probe: bool) {
        if failed {
            self.failing_mark.store(true, Ordering::SeqCst);
            self.machine.on_error();
        } else {
            self.machine.on_success();
        }
        if was_probe {
            self.probing.store(false, Ordering::SeqCst);
        }
    }

    /// Whether a failure may be on record since the last call (clears the mark).
    pub fn take_failing_mark(&self) -> bool {
        self.failing_mark.swap(false, Ordering::SeqCst)
    }

    pub fn view(&self) -> CircuitView {
        self.log
            .view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether it opened from closed since the last call (once): a failed probe
    /// reopening it does not count.
    pub fn take_opened(&self) -> bool {
        self.log.newly_opened.swap(false, Ordering::SeqCst)
    }

    /// Whether it closed after having been open since the last call (once).
    pub fn take_reclosed(&self) -> bool {
        self.log.reclosed.swap(false, Ordering::SeqCst)
    }

    /// The view, once after each change (to persist it).
    pub fn take_change(&self) -> Option<CircuitView> {
        self.log
            .changed
            .swap(false, Ordering::SeqCst)
            .then(|| self.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            open_for: Duration::from_secs(2),
            ..Default::default()
        }
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_once_and_closes() {
        failsafe::clock::freeze(|clock| {
            let b = Breaker::new(settings());
            for _ in 0..2 {
                assert_eq!(b.permit(), Permit::Go);
                b.done(true, false);
            }
            assert_eq!(b.view().state, CircuitState::Closed);
            b.done(true, false);
            assert_eq!(b.view().state, CircuitState::Open);
            assert!(!b.take_reclosed());
            assert!(b.take_opened() && !b.take_opened(), "opened, reported once");
            assert!(matches!(b.permit(), Permit::Wait(_)));
            assert!(b.take_change().is_some());
            assert!(b.take_change().is_none(), "a change is reported once");

            clock.advance(Duration::from_millis(2100));
            assert_eq!(b.permit(), Permit::Probe);
            assert!(
                matches!(b.permit(), Permit::Wait(_)),
                "only one probe at a time"
            );
            b.done(false, true);
            assert_eq!(b.view().state, CircuitState::Closed);
            assert_eq!(b.permit(), Permit::Go);
            assert!(b.take_reclosed(), "closed after having been open");
            assert!(!b.take_reclosed(), "reported once");
        });
    }

    #[test]
    fn a_failed_probe_reopens_for_longer() {
        failsafe::clock::freeze(|clock| {
            let b = Breaker::new(settings());
            for _ in 0..3 {
                b.done(true, false);
            }
            let first = b.view();
            assert!(b.take_opened());
            clock.advance(Duration::from_millis(2100));
            assert_eq!(b.permit(), Permit::Probe);
            b.done(true, true);
            let second = b.view();
            assert_eq!(second.state, CircuitState::Open);
            assert!(!b.take_opened(), "a reopening is not a new opening");
            let gap = |v: &CircuitView| {
                (v.next_probe_at.expect("probe") - v.opened_at.expect("opened")).num_seconds()
            };
            assert_eq!(
                (gap(&first), gap(&second)),
                (2, 4),
                "the open period doubles"
            );
            clock.advance(Duration::from_millis(2100));
            assert!(
                matches!(b.permit(), Permit::Wait(_)),
                "still open after the first period"
            );
            clock.advance(Duration::from_secs(2));
            assert_eq!(b.permit(), Permit::Probe);
        });
    }

    #[test]
    fn the_failing_mark_is_set_by_failures_only() {
        let b = Breaker::new(settings());
        assert!(b.take_failing_mark(), "unknown at start");
        b.done(false, false);
        assert!(!b.take_failing_mark());
        b.done(true, false);
        assert!(b.take_failing_mark());
        assert!(!b.take_failing_mark());
    }

    #[test]
    fn client_errors_do_not_trip_it() {
        let b = Breaker::new(settings());
        for _ in 0..10 {
            b.done(false, false);
        }
        assert_eq!(b.permit(), Permit::Go);
    }
}
