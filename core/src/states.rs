//! Every state a stored row can be in, as enums with one text name each: the
//! same name in the database, in JSON, on console pages and filters, and in the CLI.

/// A state name nobody defined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; expected one of: {expected}")]
pub struct UnknownState {
    pub what: &'static str,
    pub given: String,
    pub expected: String,
}

/// Declares an enum whose every variant has one text name: `ALL` (in declaration
/// order), `as_str`, `FromStr`, `Display`, serde and an OpenAPI schema listing the
/// names (with a description when one is given). Also for enums that are not
/// stored, such as the API's error codes.
#[macro_export]
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident ($what:literal $(, $desc:literal)?) {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::states::UnknownState;

            fn from_str(s: &str) -> Result<Self, $crate::states::UnknownState> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| $crate::states::UnknownState {
                    what: $what,
                    given: s.to_string(),
                    expected: Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }

        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                let description: Option<&str> = None $(.or(Some($desc)))?;
                ::utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|v| v.as_str())))
                    .description(description)
                    .into()
            }
        }

        impl ::utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A `named_enum` stored as text: every state a row can be in.
macro_rules! states {
    ($(#[$meta:meta])* $name:ident ($what:literal) {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
    }) => {
        $crate::named_enum! {
            $(#[$meta])*
            #[derive(sqlx::Type)]
            #[sqlx(type_name = "text")]
            $name ($what) {
                $($(#[$vmeta])* #[sqlx(rename = $text)] $variant = $text,)+
            }
        }
    };
}

states! {
    /// Where a delivery stands.
    DeliveryStatus ("delivery status") {
        /// Routed, not attempted yet.
        Pending = "pending",
        /// An attempt got a 2xx.
        Delivered = "delivered",
        /// The last attempt failed; `next_attempt_at` says when the next one is due.
        Failed = "failed",
        /// No more attempts (exhausted, too old, or refused for good); `last_error` says why.
        Dead = "dead",
        /// Not sent: the endpoint was deleted or disabled first.
        Cancelled = "cancelled",
    }
}

impl DeliveryStatus {
    /// No attempt will follow on its own.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Dead | Self::Cancelled)
    }
}

states! {
    /// An endpoint's circuit breaker.
    CircuitState ("circuit state") {
        /// Requests flow.
        Closed = "closed",
        /// Deliveries are parked until `next_probe_at`.
        Open = "open",
        /// One probe is in flight; its result closes or reopens the circuit.
        HalfOpen = "half_open",
    }
}

states! {
    /// What a durable bulk job does.
    JobKind ("job kind") {
        /// Re-sends an endpoint's undelivered deliveries created in a time window.
        Recover = "recover",
        /// Re-sends the dead deliveries that match a filter.
        DeadReplay = "dead_replay",
        /// Cancels an endpoint's undelivered deliveries.
        CancelBacklog = "cancel_backlog",
    }
}

states! {
    /// The order an endpoint's deliveries go out in.
    Ordering ("ordering") {
        /// As soon as each can: many in flight, retries beside fresh events.
        None = "none",
        /// By acceptance, one request in flight: a failing delivery holds the ones behind it.
        Strict = "strict",
    }
}

states! {
    /// What an ordered endpoint does when the delivery at its head dies.
    OnDead ("on_dead") {
        /// The next one goes.
        Release = "release",
        /// The endpoint is paused until someone resumes it.
        Stop = "stop",
    }
}

states! {
    /// How far a job got.
    JobStatus ("job status") {
        Queued = "queued",
        Running = "running",
        Done = "done",
    }
}

states! {
    /// Whose console session it is: a tenant's (opened by a console link) or an
    /// operator's (signed in with a token).
    SessionKind ("session kind") {
        Tenant = "tenant",
        Admin = "admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_one_name_in_json_and_in_text() {
        for s in DeliveryStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::json!(s.as_str()))
            );
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(*s));
        }
        assert_eq!(
            "half_open".parse::<CircuitState>(),
            Ok(CircuitState::HalfOpen)
        );
        assert_eq!(JobKind::DeadReplay.to_string(), "dead_replay");
        let e = "sent".parse::<DeliveryStatus>().expect_err("unknown");
        assert!(
            e.to_string()
                .contains("pending, delivered, failed, dead, cancelled"),
            "{e}"
        );
    }
}
