//! Operational events: hookrelay's own events about endpoints and deliveries
//! (failing, disabled, recovered, circuit opened and closed, delivery dead, dead
//! letters growing, paused and resumed). They are published to the ingest queue
//! like producers' events, so the same engine routes, signs, retries and records
//! them. Each goes to the endpoint's tenant (to its endpoints that name a
//! `hookrelay.` type or pattern: `*` and "every type" do not include them) and to
//! the operations tenant when one is set. None is ever raised about an endpoint
//! that receives them, nor about a delivery of one, so they cannot feed on
//! themselves. An event's id follows from what it announces, so announcing the
//! same crossing twice (a retry, two dispatchers) stores it once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::Store;
use crate::queue::{IngestEvent, IngestMessage, Publisher};

/// Event types of this prefix are hookrelay's own: producers cannot send them.
pub const PREFIX: &str = "hookrelay.";

/// Whether `event_type` is one of hookrelay's own.
pub fn is_operational(event_type: &str) -> bool {
    event_type.starts_with(PREFIX)
}

/// `data` of `hookrelay.endpoint.disabled`: hookrelay disabled an endpoint (it
/// answered 410, or every attempt failed for `HOOKRELAY_DISABLE_FAILING_AFTER`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointDisabled {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub reason: String,
}

/// `data` of `hookrelay.endpoint.failing`: an endpoint's run of failures reached
/// 50, 70, 90 or 100 % of the failures that open its breaker, or of the time that
/// disables it; once per level per run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointFailing {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    #[schema(minimum = 50, maximum = 100)]
    pub level: i16,
    pub consecutive_failures: i32,
    pub failing_since: DateTime<Utc>,
    /// When it is disabled if every attempt keeps failing.
    pub disables_at: DateTime<Utc>,
}

/// `data` of events about one endpoint that say no more: `endpoint.recovered`
/// (an attempt succeeded after a failing level was announced), `circuit.closed`,
/// `endpoint.resumed`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointNotice {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
}

/// `data` of `hookrelay.circuit.opened`: deliveries to the endpoint are parked
/// until the probe.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CircuitOpened {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub next_probe_at: Option<DateTime<Utc>>,
}

/// `data` of `hookrelay.delivery.dead`: a delivery will not be tried again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryDead {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub attempts: i32,
    pub reason: Option<String>,
}

/// `data` of `hookrelay.dead_letters.growing`: this many of the tenant's
/// deliveries died in the window (`HOOKRELAY_DEAD_LETTERS_GROWING` or more);
/// once per window.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLettersGrowing {
    pub tenant_id: Uuid,
    pub window_start: DateTime<Utc>,
    pub window_seconds: u64,
    pub dead: i32,
}

/// `data` of `hookrelay.endpoint.paused`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointPaused {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    /// Why hookrelay paused it (an ordered head died with `on_dead: stop`); `null`
    /// when paused by hand.
    pub reason: Option<String>,
}

/// One operational event to raise.
#[derive(Debug, Clone)]
pub struct Notice {
    pub event_type: &'static str,
    pub tenant_id: Uuid,
    /// The endpoint it is about, if any.
    pub endpoint_id: Option<Uuid>,
    /// What makes it this event and no other (the same key: the same event).
    pub key: String,
    data: serde_json::Value,
}

impl Notice {
    fn new(
        event_type: &'static str,
        tenant_id: Uuid,
        endpoint_id: Option<Uuid>,
        key: String,
        data: impl Serialize,
    ) -> Self {
        let data = serde_json::to_value(data).expect("notices serialize");
        Self { event_type, tenant_id, endpoint_id, key, data }
    }

    pub fn endpoint_disabled(d: EndpointDisabled) -> Self {
        let key = format!("{}/{}", d.endpoint_id, d.reason);
        Self::new(
            "hookrelay.endpoint.disabled",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    pub fn endpoint_failing(d: EndpointFailing) -> Self {
        let key = format!(
            "{}/{}/{}",
            d.endpoint_id,
            d.failing_since.timestamp_micros(),
            d.level
        );
        Self::new(
            "hookrelay.endpoint.failing",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    /// `at` tells this recovery from the endpoint's others.
    pub fn endpoint_recovered(d: EndpointNotice, at: DateTime<Utc>) -> Self {
        let key = format!("{}/{}", d.endpoint_id, at.timestamp_micros());
        Self::new(
            "hookrelay.endpoint.recovered",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    pub fn circuit_opened(d: CircuitOpened, opened_at: DateTime<Utc>) -> Self {
        let key = format!("{}/{}", d.endpoint_id, opened_at.timestamp_micros());
        Self::new(
            "hookrelay.circuit.opened",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    pub fn circuit_closed(d: EndpointNotice, at: DateTime<Utc>) -> Self {
        let key = format!("{}/{}", d.endpoint_id, at.timestamp_micros());
        Self::new(
            "hookrelay.circuit.closed",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    pub fn delivery_dead(d: DeliveryDead) -> Self {
        let key = d.delivery_id.to_string();
        Self::new(
            "hookrelay.delivery.dead",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    pub fn dead_letters_growing(d: DeadLettersGrowing) -> Self {
        let key = format!("{}/{}", d.tenant_id, d.window_start.timestamp());
        Self::new("hookrelay.dead_letters.growing", d.tenant_id, None, key, d)
    }

    pub fn endpoint_paused(d: EndpointPaused, at: DateTime<Utc>) -> Self {
        let key = format!("{}/{}", d.endpoint_id, at.timestamp_micros());
        Self::new(
            "hookrelay.endpoint.paused",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    pub fn endpoint_resumed(d: EndpointNotice, at: DateTime<Utc>) -> Self {
        let key = format!("{}/{}", d.endpoint_id, at.timestamp_micros());
        Self::new(
            "hookrelay.endpoint.resumed",
            d.tenant_id,
            Some(d.endpoint_id),
            key,
            d,
        )
    }

    /// The event for `tenant`: its id follows from the notice and the tenant.
    fn event(&self, tenant: Uuid, at: DateTime<Utc>) -> Option<IngestEvent> {
        let id = Uuid::new_v5(
            &NAMESPACE,
            format!("{}/{tenant}/{}", self.event_type, self.key).as_bytes(),
        );
        let body =
            serde_json::json!({ "type": self.event_type, "occurred_at": at, "data": self.data });
        let payload = RawValue::from_string(body.to_string()).ok()?;
        Some(IngestEvent {
            id,
            event_type: self.event_type.to_string(),
            payload,
            idempotency_key: None,
            accepted_at: at,
            request_id: None,
            traceparent: None,
            channels: None,
        })
    }
}

/// The namespace of operational events' ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b1c_0d3e_54a4_4f0e_9a57_3f1d_7e0c_2b81);

/// Every operational event type, with what it says and its `data` schema's name.
pub const TYPES: &[(&str, &str, &str)] = &[
    (
        "hookrelay.endpoint.disabled",
        "hookrelay disabled an endpoint",
        "EndpointDisabled",
    ),
    (
        "hookrelay.endpoint.failing",
        "An endpoint's failures reached 50, 70, 90 or 100 % of what opens its breaker or disables it",
        "EndpointFailing",
    ),
    (
        "hookrelay.endpoint.recovered",
        "An endpoint that was failing delivered again",
        "EndpointNotice",
    ),
    (
        "hookrelay.circuit.opened",
        "An endpoint's breaker opened",
        "CircuitOpened",
    ),
    (
        "hookrelay.circuit.closed",
        "An endpoint's breaker closed",
        "EndpointNotice",
    ),
    ("hookrelay.delivery.dead", "A delivery died", "DeliveryDead"),
    (
        "hookrelay.dead_letters.growing",
        "A tenant's dead deliveries crossed the threshold in a window",
        "DeadLettersGrowing",
    ),
    (
        "hookrelay.endpoint.paused",
        "An endpoint was paused",
        "EndpointPaused",
    ),
    (
        "hookrelay.endpoint.resumed",
        "An endpoint was resumed",
        "EndpointNotice",
    ),
];

/// Raises notices: publishes them to the ingest queue, confirmed.
#[derive(Clone)]
pub struct Notices {
    store: Store,
    publisher: Arc<Publisher>,
    /// The tenant whose endpoints receive every tenant's operational events.
    operations_tenant: Option<Uuid>,
}

impl Notices {
    pub fn new(store: Store, publisher: Arc<Publisher>, operations_tenant: Option<Uuid>) -> Self {
        Self { store, publisher, operations_tenant }
    }

    /// Raises `notices`, except those about endpoints that receive operational
    /// events themselves. A failure is logged: the change they announce is stored.
    pub async fn raise(&self, notices: Vec<Notice>) {
        if notices.is_empty() {
            return;
        }
        let about: Vec<Uuid> = notices.iter().filter_map(|n| n.endpoint_id).collect();
        let listening = match self.store.operational_endpoints(&about).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not raise operational events");
                return;
            }
        };
        let at = Utc::now();
        let mut by_tenant: std::collections::BTreeMap<Uuid, Vec<IngestEvent>> = Default::default();
        for n in notices
            .iter()
            .filter(|n| n.endpoint_id.is_none_or(|e| !listening.contains(&e)))
        {
            let tenants = std::iter::once(n.tenant_id)
                .chain(self.operations_tenant.filter(|t| *t != n.tenant_id));
            for tenant in tenants {
                if let Some(event) = n.event(tenant, at) {
                    by_tenant.entry(tenant).or_default().push(event);
                }
            }
        }
        let queue = self.publisher.topology().ingest_queue();
        let mut kinds = Vec::new();
        let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
        for (tenant_id, events) in by_tenant {
            let types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
            if let Ok(body) = serde_json::to_vec(&IngestMessage { tenant_id, events }) {
                messages.push((queue.clone(), body));
                kinds.push(types);
            }
        }
        let outcomes = self.publisher.publish_each(&messages).await;
        for (outcome, types) in outcomes.into_iter().zip(kinds) {
            match outcome {
                Ok(()) => {
                    for t in types {
                        metrics::counter!(crate::metrics::OPERATIONAL_EVENTS, "type" => t)
                            .increment(1);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "an operational event was not published"),
            }
        }
    }
}
