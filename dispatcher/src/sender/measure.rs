//! The sender's metrics: what became of each delivery, how long attempts took by
//! status class, and the latency from acceptance to delivery. Handles are taken
//! once, so recording on the hot path is an atomic add.

use chrono::{DateTime, Utc};
use hookrelay_core::metrics::{
    ATTEMPT_DURATION, DELIVERY_LATENCY, DELIVERY_OUTCOMES, status_class,
};
use hookrelay_core::model::DeliveryStatus;
use metrics::{Counter, Histogram, counter, histogram};

/// The outcomes counted, one label value each.
#[derive(Clone, Copy)]
pub(crate) enum Outcomes {
    Delivered,
    Failed,
    Dead,
    Parked,
    Cancelled,
    /// Its endpoint is paused: held without an attempt.
    Held,
    /// A retry parked because the retries' request slots were taken.
    RetryDeferred,
}

const OUTCOMES: [&str; 7] = [
    "delivered",
    "failed",
    "dead",
    "parked",
    "cancelled",
    "held",
    "retry_deferred",
];
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

pub(crate) struct SenderMetrics {
    outcomes: Vec<Counter>,
    attempts: Vec<Histogram>,
    latency: Histogram,
}

impl SenderMetrics {
    pub fn new() -> Self {
        Self {
            outcomes: OUTCOMES
                .iter()
                .map(|o| {
                    let c = counter!(DELIVERY_OUTCOMES, "outcome" => *o);
                    c.increment(0);
                    c
                })
                .collect(),
            attempts: CLASSES
                .iter()
                .map(|c| histogram!(ATTEMPT_DURATION, "status_class" => *c))
                .collect(),
            latency: histogram!(DELIVERY_LATENCY),
        }
    }

    pub fn outcome(&self, outcome: Outcomes, n: usize) {
        self.outcomes[outcome as usize].increment(n as u64);
    }

    /// A retry sent back to wait for a retry slot.
    pub fn retry_held_back(&self) {
        self.outcome(Outcomes::RetryDeferred, 1);
    }

    /// One recorded attempt: its duration, and its delivery's new status.
    pub fn attempt(
        &self,
        response_status: Option<u16>,
        duration_ms: i32,
        status: DeliveryStatus,
        accepted_at: DateTime<Utc>,
    ) {
        let class = status_class(response_status);
        let i = CLASSES
            .iter()
            .position(|c| *c == class)
            .unwrap_or(CLASSES.len() - 1);
        self.attempts[i].record(f64::from(duration_ms.max(0)) / 1000.0);
        let outcome = match status {
            DeliveryStatus::Delivered => {
                let waited = (Utc::now() - accepted_at).num_milliseconds().max(0);
                self.latency.record(waited as f64 / 1000.0);
                Outcomes::Delivered
            }
            DeliveryStatus::Dead => Outcomes::Dead,
            DeliveryStatus::Cancelled => Outcomes::Cancelled,
            DeliveryStatus::Pending | DeliveryStatus::Failed => Outcomes::Failed,
        };
        self.outcome(outcome, 1);
    }
}

impl Default for SenderMetrics {
    fn default() -> Self {
        Self::new()
    }
}
