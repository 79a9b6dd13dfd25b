//! Event type names and subscription patterns: never a panic; a valid name matches
//! itself and `*`; `prefix.*` matches only names below the prefix.
#![no_main]

use hookrelay_core::event_type::{is_valid_name, is_valid_pattern, matches, subscribed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (pattern, name) = input;
    let valid_pattern = is_valid_pattern(pattern);
    let hit = matches(pattern, name);
    let _ = subscribed(Some(&[pattern.to_string()]), name);
    if is_valid_name(name) {
        assert!(matches(name, name), "{name:?} matches itself");
        assert!(matches("*", name));
        assert!(subscribed(None, name));
    }
    if valid_pattern && hit {
        if let Some(prefix) = pattern.strip_suffix(".*") {
            assert!(name.starts_with(&format!("{prefix}.")), "{pattern:?} {name:?}");
        }
    }
});
