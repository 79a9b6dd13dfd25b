//! Domain types as stored and as shown through the API.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use uuid::Uuid;

pub use crate::states::{
    CircuitState, DeliveryStatus, JobKind, JobStatus, OnDead, Ordering, SessionKind,
};

/// One of the producer's customers; owns endpoints, events and deliveries.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub uid: Option<String>,
    pub name: String,
    /// Events per second this tenant may ingest (per gateway); `null`: the
    /// configured default.
    pub ingest_rate: Option<i32>,
    /// Most endpoints this tenant may have; `null`: the configured default.
    pub max_endpoints: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// A producer API key as listed: never the key itself, only its first characters.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub hint: String,
    /// The tenants (ids) the key reaches; `null`: every tenant.
    #[serde(rename = "tenants")]
    pub tenant_ids: Option<Vec<Uuid>>,
    /// What the key may do (see the key model in the README).
    pub permissions: Vec<String>,
    /// When the key stops working; `null`: never.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A subscriber URL of a tenant. The secret is kept apart (encrypted) and never
/// part of this view.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub description: String,
    /// `None`: subscribed to every event type.
    pub event_types: Option<Vec<String>>,
    pub disabled: bool,
    /// Why hookrelay disabled it (e.g. it answered 410 Gone); `None` when enabled or disabled by hand.
    pub disabled_reason: Option<String>,
    /// Requests per second at most (`None`: unlimited), with this burst (default: the rate).
    pub rate_limit_per_second: Option<i32>,
    pub rate_limit_burst: Option<i32>,
    /// Requests in flight at most (`None`: unlimited).
    pub max_in_flight: Option<i32>,
    /// Request timeout (`None`: the installation's default).
    pub timeout_ms: Option<i32>,
    /// Paused: deliveries wait, no attempt is made or used, until it is resumed.
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    /// Why hookrelay paused it (an ordered delivery died with `on_dead: stop`);
    /// `None` when paused by hand.
    pub paused_reason: Option<String>,
    pub ordering: Ordering,
    /// With `ordering: strict`: what happens when the delivery at the head dies.
    pub on_dead: OnDead,
    /// Which events it receives beyond its event types (see the README's filter
    /// language); `None`: every one.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<sqlx::types::Json<serde_json::Value>>,
    /// The channels it subscribes to; `None`: events of every channel and none.
    pub channels: Option<Vec<String>>,
    /// Custom headers sent with every request; a secret one's value shows as `***`.
    #[schema(value_type = Vec<crate::request_options::Header>)]
    pub headers: sqlx::types::Json<Vec<crate::request_options::Header>>,
    /// How requests authenticate (no secret is shown); `None`: only the signature.
    #[schema(value_type = Option<crate::request_options::Auth>)]
    pub auth: Option<sqlx::types::Json<crate::request_options::Auth>>,
    /// A client certificate and CA bundle (the key is never shown).
    #[schema(value_type = Option<crate::request_options::Tls>)]
    pub tls: Option<sqlx::types::Json<crate::request_options::Tls>>,
    #[sqlx(flatten)]
    pub circuit: Circuit,
    /// After a rotation, until when the previous secret still signs beside the new one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint's circuit breaker and when it opened and will next let a probe through.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Circuit {
    #[sqlx(rename = "circuit_state")]
    pub state: CircuitState,
    #[sqlx(rename = "circuit_opened_at")]
    pub opened_at: Option<DateTime<Utc>>,
    #[sqlx(rename = "circuit_next_probe_at")]
    pub next_probe_at: Option<DateTime<Utc>>,
}

/// An accepted event. `payload` is the producer's JSON, byte for byte.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Event {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: String,
    /// The channels it was published on.
    pub channels: Option<Vec<String>>,
    /// The producer's JSON, any value.
    #[serde(serialize_with = "raw_json")]
    #[schema(value_type = Value)]
    pub payload: String,
    pub idempotency_key: Option<String>,
    /// The `x-request-id` of the ingest request that accepted it.
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub routed_at: DateTime<Utc>,
}

/// Writes stored JSON text as JSON, not as a string.
fn raw_json<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

/// One event going to one endpoint; its id is the `webhook-id` subscribers see.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_response_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Open but waiting with no due time: its endpoint is paused, or it waits its
    /// turn behind the head of an ordered endpoint.
    pub held: bool,
    /// Waiting behind this delivery, the head of its ordered endpoint.
    pub blocked_by: Option<Uuid>,
    /// Who cancelled it by hand.
    pub cancelled_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One HTTP request towards an endpoint and what came back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Attempt {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub attempt: i32,
    #[schema(value_type = Object)]
    pub request_headers: serde_json::Value,
    pub response_status: Option<i32>,
    /// Header name to value (several values joined with ", "); `None` without a response.
    #[schema(value_type = Option<Object>)]
    pub response_headers: Option<serde_json::Value>,
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error: Option<String>,
    /// Sent outside its ordered endpoint's order (a replay by hand).
    pub out_of_band: bool,
    pub created_at: DateTime<Utc>,
}

/// A page of a newest-first list; `next` is the cursor for `?after=`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> Uuid) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| cursor_of(r).to_string())
        } else {
            None
        };
        Self { data: rows, next }
    }
}

/// A durable bulk job: `recover` re-sends an endpoint's failed and dead deliveries
/// routed in [`since`, `until`); `dead_replay` re-sends the dead deliveries that
/// match its filter (every part optional).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    pub tenant_id: Option<Uuid>,
    pub endpoint_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub event_type: Option<String>,
    /// Part of the recorded error (`dead_replay` only).
    pub reason: Option<String>,
    pub status: JobStatus,
    /// Deliveries made due so far.
    pub done_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
