//! Event type names (`order.created`) and endpoint subscription patterns (`order.*`).
//!
//! A name is dot-separated segments of ASCII letters, digits, `_` and `-`, at most
//! 255 bytes. A pattern is a name whose last segment may be `*`, matching one or more
//! further segments: `order.*` matches `order.created` and `order.item.added`, not
//! `order`. A lone `*` matches every event.

pub const MAX_LEN: usize = 255;

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `name` is a valid event type.
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= MAX_LEN && name.split('.').all(valid_segment)
}

/// Whether `pattern` is a valid subscription pattern.
pub fn is_valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => is_valid_name(prefix),
        None => is_valid_name(pattern),
    }
}

/// Whether an event of type `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => {
            name.len() > prefix.len() + 1
                && name.starts_with(prefix)
                && name.as_bytes()[prefix.len()] == b'.'
        }
        None => pattern == name,
    }
}

/// Whether an endpoint subscribed to `patterns` (`None`: everything) receives `name`.
/// hookrelay's own (operational) event types reach only endpoints that name a
/// `hookrelay.` type or pattern: neither `*` nor "everything" includes them.
pub fn subscribed(patterns: Option<&[String]>, name: &str) -> bool {
    let own = crate::operational::is_operational(name);
    match patterns {
        None => !own,
        Some(list) => list
            .iter()
            .any(|p| matches(p, name) && (!own || crate::operational::is_operational(p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operational_types_reach_only_those_who_name_them() {
        let every = ["*".to_string()];
        let own = ["hookrelay.*".to_string()];
        let failing = ["hookrelay.endpoint.failing".to_string()];
        let name = "hookrelay.endpoint.failing";
        assert!(!subscribed(None, name));
        assert!(!subscribed(Some(&every), name));
        assert!(subscribed(Some(&own), name));
        assert!(subscribed(Some(&failing), name));
        assert!(!subscribed(Some(&failing), "hookrelay.delivery.dead"));
        assert!(subscribed(None, "order.created") && subscribed(Some(&every), "order.created"));
        assert!(!subscribed(Some(&own), "order.created"));
    }

    #[test]
    fn validates_names_and_patterns() {
        for ok in ["order", "order.created", "a-b_c.D9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "order.",
            ".order",
            "order..x",
            "order created",
            "order.*",
            "é",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(!is_valid_name(&"a".repeat(256)));
        for ok in ["*", "order.*", "order.item.*", "order.created"] {
            assert!(is_valid_pattern(ok), "{ok}");
        }
        for bad in ["order*", "*.created", "order.*.x", ".*", ""] {
            assert!(!is_valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn matches_exact_and_wildcard() {
        assert!(matches("order.created", "order.created"));
        assert!(!matches("order.created", "order.updated"));
        assert!(matches("order.*", "order.created"));
        assert!(matches("order.*", "order.item.added"));
        assert!(!matches("order.*", "order"));
        assert!(!matches("order.*", "orders.created"));
        assert!(matches("*", "anything.at.all"));
        assert!(subscribed(None, "x"));
        assert!(!subscribed(Some(&[]), "x"));
        assert!(subscribed(Some(&["a.b".into(), "x".into()]), "x"));
    }
}
