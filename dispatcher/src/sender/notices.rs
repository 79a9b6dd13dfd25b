//! The operational events a message's outcome raises: deliveries that died, a
//! tenant's dead deliveries crossing the threshold in a window, endpoints
//! disabled, failing at a higher level or recovered, breakers opened or closed,
//! ordered endpoints paused by a dead head.

use std::collections::HashMap;

use chrono::Utc;
use hookrelay_core::model::{CircuitState, DeliveryStatus};
use hookrelay_core::operational::{
    self, CircuitOpened, DeadLettersGrowing, DeliveryDead, EndpointDisabled, EndpointFailing,
    EndpointNotice, EndpointPaused, Notice,
};
use hookrelay_core::store::{AttemptRecord, HealthChanges, SendJob, Subject};
use uuid::Uuid;

use crate::breaker::CircuitView;

/// The window `hookrelay.dead_letters.growing` counts in.
pub(super) const DEAD_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Notices gathered while a message's outcome is stored.
#[derive(Default)]
pub(super) struct Gathered {
    pub notices: Vec<Notice>,
    /// Dead deliveries (of producers' events) per tenant.
    pub dead: HashMap<Uuid, i32>,
}

impl Gathered {
    /// A delivery that died (none for operational events' own deliveries).
    pub fn attempted(&mut self, job: &SendJob, record: &AttemptRecord) {
        if record.status != DeliveryStatus::Dead || operational::is_operational(&job.event_type) {
            return;
        }
        *self.dead.entry(job.tenant_id).or_default() += 1;
        self.notices.push(Notice::delivery_dead(DeliveryDead {
            tenant_id: job.tenant_id,
            endpoint_id: job.endpoint_id,
            delivery_id: job.delivery_id,
            event_id: job.event_id,
            event_type: job.event_type.clone(),
            attempts: job.attempts + 1,
            reason: record.error.clone(),
        }));
    }

    pub fn disabled(&mut self, s: Subject, reason: String) {
        self.notices
            .push(Notice::endpoint_disabled(EndpointDisabled {
                tenant_id: s.tenant_id,
                endpoint_id: s.endpoint_id,
                reason,
            }));
    }

    pub fn health(&mut self, changes: HealthChanges) {
        for s in changes.disabled {
            self.disabled(s, "every attempt failed for too long".into());
        }
        for f in changes.failing {
            self.notices.push(Notice::endpoint_failing(EndpointFailing {
                tenant_id: f.subject.tenant_id,
                endpoint_id: f.subject.endpoint_id,
                level: f.level,
                consecutive_failures: f.failure_streak,
                failing_since: f.failing_since,
                disables_at: f.disables_at,
            }));
        }
        for s in changes.recovered {
            let d = EndpointNotice { tenant_id: s.tenant_id, endpoint_id: s.endpoint_id };
            self.notices.push(Notice::endpoint_recovered(d, Utc::now()));
        }
    }

    /// A breaker's change: opened from closed (`opened`; a failed probe reopening
    /// it raises nothing), or closed after having been open (`reclosed`).
    pub fn circuit(&mut self, job: &SendJob, view: &CircuitView, opened: bool, reclosed: bool) {
        let (tenant_id, endpoint_id) = (job.tenant_id, job.endpoint_id);
        match view.state {
            CircuitState::Open if opened => {
                let opened = view.opened_at.unwrap_or_else(Utc::now);
                let d = CircuitOpened {
                    tenant_id,
                    endpoint_id,
                    next_probe_at: view.next_probe_at,
                };
                self.notices.push(Notice::circuit_opened(d, opened));
            }
            CircuitState::Closed if reclosed => {
                let d = EndpointNotice { tenant_id, endpoint_id };
                self.notices.push(Notice::circuit_closed(d, Utc::now()));
            }
            CircuitState::Open | CircuitState::Closed | CircuitState::HalfOpen => {}
        }
    }

    pub fn paused(&mut self, tenant_id: Uuid, endpoint_id: Uuid, reason: String) {
        let d = EndpointPaused { tenant_id, endpoint_id, reason: Some(reason) };
        self.notices.push(Notice::endpoint_paused(d, Utc::now()));
    }

    /// The tenants whose dead deliveries crossed `threshold` in this window.
    pub fn growing(&mut self, crossed: Vec<(Uuid, chrono::DateTime<Utc>, i32)>) {
        for (tenant_id, window_start, dead) in crossed {
            self.notices
                .push(Notice::dead_letters_growing(DeadLettersGrowing {
                    tenant_id,
                    window_start,
                    window_seconds: DEAD_WINDOW.as_secs(),
                    dead,
                }));
        }
    }
}
