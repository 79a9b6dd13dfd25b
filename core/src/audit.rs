//! The audit log's vocabulary: who acted (`Actor`), and the names of the actions
//! recorded. The store writes each entry in the same statement or transaction as
//! the change it records; secrets never appear in an entry.

use std::net::IpAddr;

use serde::Serialize;
use uuid::Uuid;

/// What kind of caller acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    ApiKey,
    Admin,
    Operator,
    Console,
    /// hookrelay itself (an ordered endpoint stopped when its head died).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Console => "console",
            Self::System => "system",
        }
    }
}

/// Who acted, from where, in which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The key's, the operator's or the console session's id.
    pub id: Option<Uuid>,
    pub name: String,
    pub address: Option<IpAddr>,
    pub request_id: Option<String>,
}

impl Actor {
    /// The operator's single admin token.
    pub fn admin() -> Self {
        Self {
            kind: ActorKind::Admin,
            id: None,
            name: "admin token".into(),
            address: None,
            request_id: None,
        }
    }

    /// hookrelay acting on its own, by a rule the endpoint chose.
    pub fn hookrelay() -> Self {
        Self {
            kind: ActorKind::System,
            name: "hookrelay".into(),
            ..Self::admin()
        }
    }

    /// A command run on the machine (`hookrelay …`), as the operator.
    pub fn command_line(what: &str) -> Self {
        Self { name: format!("hookrelay {what}"), ..Self::admin() }
    }

    pub fn from(mut self, address: Option<IpAddr>, request_id: Option<String>) -> Self {
        self.address = address;
        self.request_id = request_id;
        self
    }
}

/// The actions the log records, by their stored names.
pub mod action {
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const TENANT_LIMITS_CHANGED: &str = "tenant.limits_changed";
    pub const TENANT_DELETED: &str = "tenant.deleted";
    pub const ENDPOINT_CREATED: &str = "endpoint.created";
    pub const ENDPOINT_UPDATED: &str = "endpoint.updated";
    pub const ENDPOINT_DELETED: &str = "endpoint.deleted";
    pub const ENDPOINT_PAUSED: &str = "endpoint.paused";
    pub const ENDPOINT_RESUMED: &str = "endpoint.resumed";
    pub const BACKLOG_CANCELLED: &str = "endpoint.backlog_cancel_started";
    pub const DELIVERY_CANCELLED: &str = "delivery.cancelled";
    pub const EVENT_CANCELLED: &str = "event.deliveries_cancelled";
    pub const SECRET_READ: &str = "endpoint.secret_read";
    pub const SECRET_ROTATED: &str = "endpoint.secret_rotated";
    pub const KEY_CREATED: &str = "api_key.created";
    pub const KEY_REVOKED: &str = "api_key.revoked";
    pub const DELIVERY_REPLAYED: &str = "delivery.replayed";
    pub const ENDPOINT_RECOVERED: &str = "endpoint.recover_started";
    pub const DEAD_REPLAYED: &str = "dead_letters.replayed";
    pub const DEAD_PURGED: &str = "dead_letters.purged";
    pub const BROKER_DEAD_REQUEUED: &str = "broker_dead_letters.requeued";
    pub const BROKER_DEAD_PURGED: &str = "broker_dead_letters.purged";
    pub const CONSOLE_LINK_ISSUED: &str = "console_link.issued";
    pub const CONSOLE_SIGN_IN: &str = "console.signed_in";
    pub const CONSOLE_SESSION_ENDED: &str = "console.session_ended";
    pub const OPERATOR_ADDED: &str = "operator.added";
    pub const OPERATOR_DISABLED: &str = "operator.disabled";
}
