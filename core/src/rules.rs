//! What makes endpoint, tenant and API key settings valid, shared by the API and
//! the console so both refuse the same input with the same words; also secret
//! generation and the payload of a test event.

use std::time::Duration;

use hookrelay_signature::Secret;

use crate::event_type;
use crate::store::Limits;
use crate::target::TargetPolicy;

pub const MAX_EVENT_TYPES: usize = 100;
pub const MAX_DESCRIPTION: usize = 1024;
/// Longest grace period during which a rotated-out secret still signs.
pub const MAX_SECRET_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Grace period when the caller names none.
pub const DEFAULT_SECRET_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The event type of test events sent from the API or the console.
pub const TEST_EVENT_TYPE: &str = "hookrelay.test";

/// Text PostgreSQL can store and a page can show: no NUL or other control characters.
fn check_plain(name: &str, text: &str) -> Result<(), String> {
    if text.chars().any(char::is_control) {
        return Err(format!("{name} must not contain control characters"));
    }
    Ok(())
}

pub fn check_url(targets: &TargetPolicy, url: &str) -> Result<(), String> {
    check_plain("url", url)?;
    targets
        .check_url(url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `None` subscribes to everything; a list must be non-empty and well formed.
pub fn check_event_types(types: Option<&[String]>) -> Result<(), String> {
    let Some(list) = types else { return Ok(()) };
    if list.is_empty() {
        return Err(
            "event_types must not be empty; omit it (or send null) to receive every event".into(),
        );
    }
    if list.len() > MAX_EVENT_TYPES {
        return Err(format!("at most {MAX_EVENT_TYPES} event_types"));
    }
    if let Some(bad) = list.iter().find(|p| !event_type::is_valid_pattern(p)) {
        return Err(format!(
            "event_types entry {bad:?} is not an event type (dot-separated letters, digits, '_', '-') or a pattern ending in .*"
        ));
    }
    Ok(())
}

pub fn check_limits(max_timeout: Duration, l: &Limits) -> Result<(), String> {
    let in_range = |name: &str, v: Option<i32>, min: i32, max: i32| match v {
        Some(n) if n < min || n > max => Err(format!("{name} must be from {min} to {max}")),
        _ => Ok(()),
    };
    in_range("rate_limit_per_second", l.rate_limit_per_second, 1, 100_000)?;
    in_range("rate_limit_burst", l.rate_limit_burst, 1, 100_000)?;
    in_range("max_in_flight", l.max_in_flight, 1, 10_000)?;
    let max_ms = i32::try_from(max_timeout.as_millis()).unwrap_or(i32::MAX);
    in_range("timeout_ms", l.timeout_ms, 100, max_ms)
}

pub fn check_description(d: Option<&str>) -> Result<(), String> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        )),
        Some(d) => check_plain("description", d),
        None => Ok(()),
    }
}

/// An API key's name: free text, up to 256 characters.
pub fn check_key_name(name: &str) -> Result<(), String> {
    if name.chars().count() > 256 {
        return Err("name must be at most 256 characters".into());
    }
    check_plain("name", name)
}

/// A tenant's name (1 to 256 characters once trimmed) and optional `uid`.
pub fn check_tenant(name: &str, uid: Option<&str>) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 {
        return Err("name must be 1 to 256 characters".into());
    }
    check_plain("name", name)?;
    if let Some(uid) = uid {
        let valid = (1..=128).contains(&uid.len())
            && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            // A uid that reads as an id would make `{tenant}` ambiguous.
            && uuid::Uuid::parse_str(uid).is_err();
        if !valid {
            return Err(
                "uid must be 1 to 128 letters, digits, '-', '_' or '.', and not a UUID".into(),
            );
        }
    }
    Ok(())
}

/// The caller's own `whsec_` secret, or 32 fresh random bytes.
pub fn new_secret(given: Option<&str>) -> Result<Secret, String> {
    match given {
        Some(s) => Secret::from_whsec(s).map_err(|e| format!("secret: {e}")),
        None => Ok(Secret::from_bytes(rand::random::<[u8; 32]>().to_vec())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid key length"))),
    }
}

pub fn check_grace(grace: Duration) -> Result<(), String> {
    if grace > MAX_SECRET_GRACE {
        return Err(format!(
            "grace_period_seconds must be at most {}",
            MAX_SECRET_GRACE.as_secs()
        ));
    }
    Ok(())
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
        assert!(check_event_types(None).is_ok());
        assert!(check_event_types(Some(&[])).is_err());
        assert!(check_event_types(Some(&["order.*".into(), "user.created".into()])).is_ok());
        let err = check_event_types(Some(&["bad type".into()])).expect_err("refused");
        assert!(err.contains("\"bad type\""), "{err}");
    }

    #[test]
    fn limits_are_range_checked_against_the_installation_timeout() {
        let max = Duration::from_secs(30);
        let ok = Limits {
            rate_limit_per_second: Some(10),
            timeout_ms: Some(30_000),
            ..Limits::default()
        };
        assert!(check_limits(max, &ok).is_ok());
        let slow = Limits {
            timeout_ms: Some(30_001),
            ..Limits::default()
        };
        assert_eq!(
            check_limits(max, &slow).expect_err("refused"),
            "timeout_ms must be from 100 to 30000"
        );
    }

    #[test]
    fn secrets_are_generated_or_parsed_and_grace_is_bounded() {
        let a = new_secret(None).expect("random");
        let b = new_secret(Some(&a.to_whsec())).expect("parsed");
        assert_eq!(a, b);
        assert_ne!(a, new_secret(None).expect("random"));
        assert!(new_secret(Some("nope")).is_err());
        assert!(check_key_name("billing\0").is_err());
        assert!(check_tenant("Acme\u{7}", None).is_err());
        assert!(check_description(Some("line\0")).is_err());
        assert!(check_grace(MAX_SECRET_GRACE).is_ok());
        assert!(check_grace(MAX_SECRET_GRACE + Duration::from_secs(1)).is_err());
    }
}
