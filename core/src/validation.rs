//! What makes endpoint, tenant and API key settings valid, shared by the API and
//! the console so both refuse the same input with the same words. Each check parses
//! raw input once, at the edge, into a value that is valid by construction; also
//! secret generation and the payload of a test event.

use std::time::Duration;

use hookrelay_signature::Secret;

use crate::event_type;
use crate::target_policy::TargetPolicy;

pub const MAX_EVENT_TYPES: usize = 100;
pub const MAX_DESCRIPTION: usize = 1024;
/// Per-endpoint protection settings (`None`: none / default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub rate_limit_per_second: Option<i32>,
    pub rate_limit_burst: Option<i32>,
    pub max_in_flight: Option<i32>,
    pub timeout_ms: Option<i32>,
}

/// Longest grace period during which a rotated-out secret still signs.
pub const MAX_SECRET_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Grace period when the caller names none.
pub const DEFAULT_SECRET_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The event type of test events sent from the API or the console.
pub const TEST_EVENT_TYPE: &str = "hookrelay.test";

/// Why input was refused, in words fit to show the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

/// Text PostgreSQL can store and a page can show: no NUL or other control characters.
fn plain(name: &str, text: &str) -> Result<(), Invalid> {
    if text.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{name} must not contain control characters"
        )));
    }
    Ok(())
}

/// Declares a checked text value: a newtype that only its `parse` makes.
macro_rules! checked_text {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }
    };
}

checked_text!(
    /// An endpoint URL the target policy allows.
    EndpointUrl
);
checked_text!(
    /// An endpoint's description: up to 1,024 characters.
    Description
);
checked_text!(
    /// An API key's name: free text, up to 256 characters.
    KeyName
);
checked_text!(
    /// A tenant's name: 1 to 256 characters once trimmed.
    TenantName
);
checked_text!(
    /// A tenant's own id: 1 to 128 letters, digits, '-', '_' or '.', never a UUID.
    TenantUid
);

impl EndpointUrl {
    pub fn parse(targets: &TargetPolicy, url: &str) -> Result<Self, Invalid> {
        plain("url", url)?;
        targets.check_url(url).map_err(|e| Invalid(e.to_string()))?;
        Ok(Self(url.to_string()))
    }

    /// The URL as the audit log keeps it (append-only, outliving the endpoint):
    /// user info, query and fragment, where tokens tend to live, replaced.
    pub fn redacted(&self) -> String {
        crate::target_policy::redacted_url(&self.0)
    }
}

impl Description {
    pub fn parse(d: &str) -> Result<Self, Invalid> {
        if d.chars().count() > MAX_DESCRIPTION {
            return Err(Invalid(format!(
                "description must be at most {MAX_DESCRIPTION} characters"
            )));
        }
        plain("description", d)?;
        Ok(Self(d.to_string()))
    }
}

impl KeyName {
    pub fn parse(name: &str) -> Result<Self, Invalid> {
        let name = name.trim();
        if name.chars().count() > 256 {
            return Err(Invalid::new("name must be at most 256 characters"));
        }
        plain("name", name)?;
        Ok(Self(name.to_string()))
    }
}

impl TenantName {
    pub fn parse(name: &str) -> Result<Self, Invalid> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 256 {
            return Err(Invalid::new("name must be 1 to 256 characters"));
        }
        plain("name", name)?;
        Ok(Self(name.to_string()))
    }
}

impl TenantUid {
    pub fn parse(uid: &str) -> Result<Self, Invalid> {
        let valid = (1..=128).contains(&uid.len())
            && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            // A uid that reads as an id would make `{tenant}` ambiguous.
            && uuid::Uuid::parse_str(uid).is_err();
        if !valid {
            return Err(Invalid::new(
                "uid must be 1 to 128 letters, digits, '-', '_' or '.', and not a UUID",
            ));
        }
        Ok(Self(uid.to_string()))
    }
}

/// The event types an endpoint subscribes to: a non-empty list of types and
/// patterns (`None` where it is used means every event type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(Vec<String>);

impl EventTypes {
    pub fn parse(list: Vec<String>) -> Result<Self, Invalid> {
        if list.is_empty() {
            return Err(Invalid::new(
                "event_types must not be empty; omit it (or send null) to receive every event",
            ));
        }
        if list.len() > MAX_EVENT_TYPES {
            return Err(Invalid(format!("at most {MAX_EVENT_TYPES} event_types")));
        }
        if let Some(bad) = list.iter().find(|p| !event_type::is_valid_pattern(p)) {
            return Err(Invalid(format!(
                "event_types entry {bad:?} is not an event type (dot-separated letters, digits, '_', '-') or a pattern ending in .*"
            )));
        }
        Ok(Self(list))
    }

    /// `None` stays `None` (every event type); a list must be valid.
    pub fn parse_optional(list: Option<Vec<String>>) -> Result<Option<Self>, Invalid> {
        list.map(Self::parse).transpose()
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Channels on an event or an endpoint: 1 to `MAX_CHANNELS` names of 1 to 128
/// letters, digits, `.`, `_`, `:` or `-`, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels(Vec<String>);

/// Most channels an event or an endpoint names.
pub const MAX_CHANNELS: usize = 10;
/// Longest channel name.
pub const MAX_CHANNEL_LEN: usize = 128;

impl Channels {
    pub fn parse(mut list: Vec<String>) -> Result<Self, Invalid> {
        if list.is_empty() {
            return Err(Invalid::new(
                "channels must not be empty; omit it (or send null) for every channel",
            ));
        }
        if list.len() > MAX_CHANNELS {
            return Err(Invalid(format!("at most {MAX_CHANNELS} channels")));
        }
        let valid = |c: &str| {
            !c.is_empty()
                && c.len() <= MAX_CHANNEL_LEN
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._:-".contains(ch))
        };
        if let Some(bad) = list.iter().find(|c| !valid(c)) {
            return Err(Invalid(format!(
                "channel {bad:?} must be 1 to {MAX_CHANNEL_LEN} letters, digits, '.', '_', ':' or '-'"
            )));
        }
        list.sort_unstable();
        list.dedup();
        Ok(Self(list))
    }

    pub fn parse_optional(list: Option<Vec<String>>) -> Result<Option<Self>, Invalid> {
        list.map(Self::parse).transpose()
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// A payload filter, checked (`filter::Filter::parse`) and kept as the caller wrote it.
pub fn filter(doc: serde_json::Value) -> Result<serde_json::Value, Invalid> {
    crate::filter::Filter::parse(&doc).map_err(|e| Invalid(e.to_string()))?;
    if let Some(problem) = unstorable(&doc) {
        return Err(Invalid(format!("filter: {problem}")));
    }
    Ok(doc)
}

/// Numbers in a filter stay within this magnitude: PostgreSQL keeps a number
/// as an exact decimal, and one near the largest double may not read back as one.
pub const FILTER_NUMBER_LIMIT: f64 = 1e300;

/// What in a JSON document PostgreSQL could not store and give back as it was:
/// a NUL character in a key or string, or a number beyond `FILTER_NUMBER_LIMIT`.
fn unstorable(doc: &serde_json::Value) -> Option<&'static str> {
    use serde_json::Value;
    const NUL: &str =
        "its keys and strings must not contain NUL (\\u0000), which PostgreSQL cannot store";
    match doc {
        Value::String(s) if s.contains('\0') => Some(NUL),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.abs() > FILTER_NUMBER_LIMIT) => {
            Some("its numbers must be within ±1e300")
        }
        Value::Array(items) => items.iter().find_map(unstorable),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(NUL)
            } else {
                unstorable(v)
            }
        }),
        _ => None,
    }
}

/// An endpoint's limits, each within its range (the timeout within the installation's).
pub fn limits(max_timeout: Duration, l: Limits) -> Result<Limits, Invalid> {
    let in_range = |name: &str, v: Option<i32>, min: i32, max: i32| match v {
        Some(n) if n < min || n > max => {
            Err(Invalid(format!("{name} must be from {min} to {max}")))
        }
        _ => Ok(()),
    };
    in_range("rate_limit_per_second", l.rate_limit_per_second, 1, 100_000)?;
    in_range("rate_limit_burst", l.rate_limit_burst, 1, 100_000)?;
    in_range("max_in_flight", l.max_in_flight, 1, 10_000)?;
    let max_ms = i32::try_from(max_timeout.as_millis()).unwrap_or(i32::MAX);
    in_range("timeout_ms", l.timeout_ms, 100, max_ms)?;
    Ok(l)
}

/// How long a rotated-out secret keeps signing: at most `MAX_SECRET_GRACE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace(Duration);

impl Grace {
    /// `None` takes the default of a day.
    pub fn from_secs(secs: Option<u64>) -> Result<Self, Invalid> {
        let grace = secs.map_or(DEFAULT_SECRET_GRACE, Duration::from_secs);
        if grace > MAX_SECRET_GRACE {
            return Err(Invalid(format!(
                "grace_period_seconds must be at most {}",
                MAX_SECRET_GRACE.as_secs()
            )));
        }
        Ok(Self(grace))
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

/// The caller's own `whsec_` secret.
pub fn given_secret(whsec: &str) -> Result<Secret, Invalid> {
    Secret::from_whsec(whsec).map_err(|e| Invalid(format!("secret: {e}")))
}

/// The caller's own secret if it gave one, else a fresh one.
pub fn secret_or_new(whsec: Option<&str>) -> Result<Secret, Invalid> {
    whsec.map_or_else(|| Ok(new_secret()), given_secret)
}

/// 32 fresh random bytes.
pub fn new_secret() -> Secret {
    Secret::from_bytes(rand::random::<[u8; 32]>().to_vec()).expect("32 bytes is a valid key length")
}

/// The JSON body of a test event: says what it is, so a subscriber's logs do too.
pub fn test_payload(endpoint: uuid::Uuid, at: chrono::DateTime<chrono::Utc>) -> String {
    serde_json::json!({
        "type": TEST_EVENT_TYPE,
        "message": "This is a test event sent from hookrelay to check that this endpoint receives and verifies webhooks.",
        "endpoint_id": endpoint,
        "sent_at": at,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_must_be_absent_or_a_valid_list() {
        assert_eq!(EventTypes::parse_optional(None), Ok(None));
        assert!(EventTypes::parse(vec![]).is_err());
        let ok = EventTypes::parse(vec!["order.*".into(), "user.created".into()]).expect("valid");
        assert_eq!(ok.as_slice().len(), 2);
        let err = EventTypes::parse(vec!["bad type".into()]).expect_err("refused");
        let channels = Channels::parse(vec!["eu".into(), "billing:v2".into(), "eu".into()]);
        assert_eq!(
            channels.map(Channels::into_vec),
            Ok(vec!["billing:v2".to_string(), "eu".to_string()])
        );
        assert!(Channels::parse(vec!["has space".into()]).is_err());
        assert!(Channels::parse(vec![]).is_err());
        assert!(filter(serde_json::json!({"a": {"$bad": 1}})).is_err());
        assert!(err.0.contains("\"bad type\""), "{err}");
    }

    #[test]
    fn limits_are_range_checked_against_the_installation_timeout() {
        let max = Duration::from_secs(30);
        let ok = Limits {
            rate_limit_per_second: Some(10),
            timeout_ms: Some(30_000),
            ..Limits::default()
        };
        assert_eq!(limits(max, ok), Ok(ok));
        let slow = Limits { timeout_ms: Some(30_001), ..Limits::default() };
        assert_eq!(
            limits(max, slow).expect_err("refused").0,
            "timeout_ms must be from 100 to 30000"
        );
    }

    #[test]
    fn secrets_are_generated_or_parsed_and_grace_is_bounded() {
        let a = new_secret();
        let b = given_secret(&a.to_whsec()).expect("parsed");
        assert_eq!(a, b);
        assert_ne!(a, new_secret());
        assert!(given_secret("nope").is_err());
        assert!(KeyName::parse("billing\0").is_err());
        assert_eq!(KeyName::parse(" ci ").expect("valid").as_str(), "ci");
        assert!(TenantName::parse("Acme\u{7}").is_err());
        assert!(TenantName::parse("  ").is_err());
        assert!(TenantUid::parse(&uuid::Uuid::new_v4().to_string()).is_err());
        assert!(Description::parse("line\0").is_err());
        assert_eq!(
            Grace::from_secs(None).expect("default").duration(),
            DEFAULT_SECRET_GRACE
        );
        assert!(Grace::from_secs(Some(MAX_SECRET_GRACE.as_secs())).is_ok());
        assert!(Grace::from_secs(Some(MAX_SECRET_GRACE.as_secs() + 1)).is_err());
    }
}
