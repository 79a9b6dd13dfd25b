//! The settings as the environment gives them: defaults, ranges, and errors that
//! name the setting.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;
use crate::retry::RetryPolicy;

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("HOOKRELAY_ENCRYPTION_KEY".into())
        .or_insert_with(|| BASE64.encode([1u8; 32]));
    Config::from_lookup(move |k| map.get(k).cloned())
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = load(&[]).expect("defaults are valid");
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.http.max_payload_bytes, 1024 * 1024);
    assert!(!c.security.allow_private_targets);
    let keys = c.security.master_keys();
    assert_eq!(keys.iter().next(), Some(("default", &[1u8; 32])));
    assert_eq!(c.security.deny_cidrs, TargetPolicy::default().deny);
    assert_eq!(c.retry.policy(), RetryPolicy::default());
    assert_eq!(c.breaker, BreakerSettings::default());
    assert_eq!(
        c.broker.queue_delivery_limit,
        crate::queue::DEFAULT_DELIVERY_LIMIT
    );
    assert_eq!(
        c.delivery.disable_failing_after,
        Duration::from_secs(5 * 86_400)
    );
}

#[test]
fn bad_values_name_the_setting() {
    let c = load(&[("HOOKRELAY_SHARDS", " 4 "), ("HOOKRELAY_PUBLIC_URL", "  ")]).expect("trimmed");
    assert_eq!((c.broker.shards, c.http.public_url), (4, None));
    for (name, value) in [
        ("HOOKRELAY_SHARDS", "0"),
        ("HOOKRELAY_SHARDS", "many"),
        ("HOOKRELAY_LISTEN", "localhost"),
        ("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "maybe"),
        ("HOOKRELAY_DELIVERY_TIMEOUT", "forever"),
        ("HOOKRELAY_DATABASE_URL", "mysql://x"),
        ("HOOKRELAY_ENCRYPTION_KEY", "c2hvcnQ="),
        ("HOOKRELAY_ADMIN_TOKEN", "short"),
        ("HOOKRELAY_RETRY_SCHEDULE", "5s,later"),
        ("HOOKRELAY_MAX_ATTEMPTS", "0"),
        ("HOOKRELAY_NON_RETRYABLE_STATUSES", "200"),
        ("HOOKRELAY_ALLOW_CIDRS", "10.0.0.0/99"),
        ("HOOKRELAY_BREAKER_FAILURE_RATE", "1.5"),
        ("HOOKRELAY_BREAKER_OPEN", "10ms"),
    ] {
        let e = load(&[(name, value)]).expect_err(name);
        assert_eq!(e.name, name, "{e}");
        assert!(e.to_string().contains(name));
    }
}

#[test]
fn the_retry_schedule_sets_the_attempts() {
    let c = load(&[
        ("HOOKRELAY_RETRY_SCHEDULE", "5s, 30s,2m"),
        ("HOOKRELAY_NON_RETRYABLE_STATUSES", "400,422"),
    ])
    .expect("valid");
    let p = c.retry.policy();
    assert_eq!(
        p.schedule,
        vec![
            Duration::from_secs(5),
            Duration::from_secs(30),
            Duration::from_secs(120)
        ]
    );
    assert_eq!(p.max_attempts, 4);
    assert_eq!(p.non_retryable, vec![400, 422]);
    let c = load(&[
        ("HOOKRELAY_RETRY_SCHEDULE", "1s"),
        ("HOOKRELAY_MAX_ATTEMPTS", "9"),
    ])
    .expect("valid");
    assert_eq!(c.retry.policy().max_attempts, 9);
}

#[test]
fn encryption_key_is_required() {
    let e = Config::from_lookup(|_| None).expect_err("missing key");
    assert_eq!(e.name, "HOOKRELAY_ENCRYPTION_KEY");
    assert!(e.reason.contains("openssl rand"), "{e}");
}

#[test]
fn several_master_keys_with_ids_the_first_current() {
    let (k1, k2) = (BASE64.encode([1u8; 32]), BASE64.encode([2u8; 32]));
    let c = Config::from_lookup(|name| {
        (name == "HOOKRELAY_ENCRYPTION_KEYS").then(|| format!("k2:{k2}, k1:{k1}"))
    })
    .expect("valid");
    assert_eq!(
        c.security.master_keys().ids().collect::<Vec<_>>(),
        ["k2", "k1"]
    );
    // The single key joins the ring, last, as `default`.
    let c = Config::from_lookup(|name| match name {
        "HOOKRELAY_ENCRYPTION_KEYS" => Some(format!("k2:{k2}")),
        "HOOKRELAY_ENCRYPTION_KEY" => Some(k1.clone()),
        _ => None,
    })
    .expect("valid");
    assert_eq!(
        c.security.master_keys().ids().collect::<Vec<_>>(),
        ["k2", "default"]
    );
    for bad in [
        format!("k1:{k1},k1:{k2}"),
        k1.to_string(),
        format!("bad id:{k1}"),
        "k1:short".into(),
    ] {
        let e =
            Config::from_lookup(|name| (name == "HOOKRELAY_ENCRYPTION_KEYS").then(|| bad.clone()))
                .expect_err("refused");
        assert_eq!(e.name, "HOOKRELAY_ENCRYPTION_KEYS", "{bad}: {e}");
    }
}

#[test]
fn the_public_url_must_be_an_http_origin() {
    let c = load(&[("HOOKRELAY_PUBLIC_URL", "HTTPS://Hooks.Example.com/")]).expect("valid");
    assert_eq!(
        c.http.public_url.as_deref(),
        Some("https://hooks.example.com")
    );
    assert!(load(&[("HOOKRELAY_PUBLIC_URL", "https://x.example/console")]).is_err());
    assert!(load(&[("HOOKRELAY_PUBLIC_URL", "https://x.example/?a=1")]).is_err());
    assert!(load(&[("HOOKRELAY_PUBLIC_URL", "ftp://x")]).is_err());
    assert!(load(&[("HOOKRELAY_PUBLIC_URL", "not a url")]).is_err());
}

#[test]
fn secrets_do_not_print() {
    let c = load(&[("HOOKRELAY_ADMIN_TOKEN", "a-very-secret-admin-token")]).expect("valid");
    assert!(!format!("{c:?}").contains("a-very-secret"));
}

#[test]
fn every_setting_is_declared_once_with_help_and_described() {
    let cmd = Config::command();
    let envs: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    let unique: std::collections::HashSet<_> = envs.iter().collect();
    assert_eq!(unique.len(), envs.len());
    assert_eq!(envs.len(), 66, "every HOOKRELAY_* setting is declared here");
    for arg in cmd.get_arguments().filter(|a| a.get_env().is_some()) {
        assert!(arg.get_help().is_some(), "{:?} has no help", arg.get_id());
    }
    let key = BASE64.encode([1u8; 32]);
    let env = |name: &str| match name {
        "HOOKRELAY_ENCRYPTION_KEY" => Some(key.clone()),
        "HOOKRELAY_SHARDS" => Some(" 8 ".into()),
        "HOOKRELAY_LISTEN" => Some("127.0.0.1:9999".into()),
        _ => None,
    };
    let args = [
        "hookrelay",
        "--admin-token=a-very-secret-admin-token",
        "--shards",
        "4",
    ];
    let parsed = parse(Config::command(), args.map(Into::into).to_vec(), env).expect("valid");
    let text = describe(&parsed);
    assert!(
        text.contains("HOOKRELAY_SHARDS=4  # command line"),
        "flags win: {text}"
    );
    assert!(text.contains("HOOKRELAY_ADMIN_TOKEN=***"), "{text}");
    assert!(
        text.contains("HOOKRELAY_LISTEN=127.0.0.1:9999  # environment"),
        "{text}"
    );
    assert!(
        text.contains("HOOKRELAY_ENCRYPTION_KEY=***  # environment"),
        "{text}"
    );
    assert!(
        text.contains("HOOKRELAY_DELIVERY_TIMEOUT=15s  # default"),
        "{text}"
    );
    let c = Config::from_matches(&parsed.matches).expect("valid");
    assert_eq!((c.broker.shards, c.http.listen.port()), (4, 9999));
    assert!(!text.contains("a-very-secret"));
}
