//! Endpoint URLs through the SSRF rules: never a panic; an accepted URL names no
//! denied address literally; the audit log's redacted form keeps no query, user
//! info or fragment.
#![no_main]

use std::net::IpAddr;

use hookrelay_core::target_policy::{TargetPolicy, redacted_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let policy = TargetPolicy::default();
    if let Ok(url) = policy.check_url(raw) {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => assert!(policy.permits(IpAddr::V4(ip)), "{raw}"),
            Some(url::Host::Ipv6(ip)) => assert!(policy.permits(IpAddr::V6(ip)), "{raw}"),
            _ => {}
        }
        assert!(url.username().is_empty() && url.password().is_none());
    }
    let _ = TargetPolicy::allow_everything().check_url(raw);
    // What the audit log keeps: no query, user info or fragment but the marker.
    let redacted = redacted_url(raw);
    if let Ok(kept) = url::Url::parse(&redacted) {
        assert!(matches!(kept.query(), None | Some("redacted")), "{raw} -> {redacted}");
        assert!(matches!(kept.fragment(), None | Some("redacted")), "{raw} -> {redacted}");
        assert!(kept.password().is_none(), "{raw} -> {redacted}");
        assert!(matches!(kept.username(), "" | "redacted"), "{raw} -> {redacted}");
    }
});
