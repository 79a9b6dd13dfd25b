//! Message bodies on the queues (JSON). One message may carry many events or many
//! deliveries, so a broker round-trip is amortised over a batch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Events accepted by the gateway for one tenant.
#[derive(Debug, Serialize, Deserialize)]
pub struct IngestMessage {
    pub tenant_id: Uuid,
    pub events: Vec<IngestEvent>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IngestEvent {
    pub id: Uuid,
    pub event_type: String,
    /// The producer's JSON, untouched.
    pub payload: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub accepted_at: DateTime<Utc>,
    /// The `x-request-id` of the request that accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The trace it was accepted in (W3C `traceparent`), when spans are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The channels it was published on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
}

/// Deliveries due now, all of endpoints on the shard the message is published to.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryMessage {
    pub deliveries: Vec<Uuid>,
    /// Each delivery's attempt count when this message was published (the decision
    /// it stands for). A message whose count is behind the delivery's is stale: an
    /// attempt was made since, and the sender skips it. Absent in older messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<i32>>,
    /// Routed from the bulk ingest lane (a tenant far above its share): the sender
    /// claims these apart from everyone else's, so they never delay them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bulk: bool,
}
