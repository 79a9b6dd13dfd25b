//! The bodies the API answers with, beside the resources of `hookrelay_core::model`:
//! handlers return these types and the OpenAPI document is derived from the same
//! types, so the compiler keeps the two alike.

use chrono::{DateTime, Utc};
use hookrelay_core::model::{ApiKey, Attempt, Delivery, Event};
use hookrelay_core::queue::DeadLetter;
use hookrelay_core::store::DeadStat;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ErrorCode;

/// `{"error": {"code", "message"}}`, the one shape of every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; may change between versions.
    pub message: String,
}

/// What cancelling an event's deliveries did.
#[derive(Serialize, ToSchema)]
pub struct EventCancelled {
    /// Deliveries cancelled (those not delivered yet).
    pub cancelled: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: String,
}

/// Each part: `ok`, `unreachable` or `timed out`.
#[derive(Serialize, ToSchema)]
pub struct Checks {
    pub postgres: String,
    pub rabbitmq: String,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: String,
    pub checks: Checks,
}

#[derive(Serialize, ToSchema)]
pub struct NotReady {
    pub error: ErrorDetail,
    pub checks: Checks,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKey>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub row: ApiKey,
    /// The key itself, `hr_…`: shown only this once.
    pub key: String,
}

#[derive(Serialize, ToSchema)]
pub struct SecretOut {
    /// `whsec_…`
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Rotated {
    /// The new `whsec_…` secret.
    pub secret: String,
    /// Until when the previous secret also signs (`null`: it stopped now).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct TestSent {
    pub delivery_id: Uuid,
    #[schema(example = "pending")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedEvent {
    /// The event's id (derived from the idempotency key when one was given).
    pub id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedBatch {
    /// The events' ids, in the order sent.
    pub ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    pub id: Uuid,
    #[schema(example = "pending")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConsoleLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadList {
    pub data: Vec<Delivery>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadStats {
    pub data: Vec<DeadStat>,
    pub total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Purged {
    pub purged: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Inspection {
    pub delivery: Delivery,
    pub event: Event,
    pub attempts: Vec<Attempt>,
}

/// A dead-lettered message with its body as text.
#[derive(Serialize, ToSchema)]
pub struct BrokerDeadLetter {
    #[serde(flatten)]
    pub letter: DeadLetter,
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct BrokerDeadList {
    /// Messages in the queue.
    pub count: u32,
    pub data: Vec<BrokerDeadLetter>,
}

#[derive(Serialize, ToSchema)]
pub struct BrokerPurged {
    pub purged: Vec<String>,
}
