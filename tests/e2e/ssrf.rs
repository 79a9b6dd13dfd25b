//! The SSRF guard at send time: names are resolved through the deny list, so a
//! hostname that points at loopback is refused even though its URL looked harmless.

use serde_json::json;

use crate::helpers::{Receiver, TestApp};

#[tokio::test]
async fn a_hostname_resolving_to_loopback_is_refused_at_send_time() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    let resolved: Vec<_> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .expect("the hostname resolves")
        .collect();
    let guard = hookrelay_core::target_policy::TargetPolicy::default();
    assert!(
        resolved.iter().all(|a| !guard.permits(a.ip())),
        "precondition: this machine's hostname {host} resolves to private or loopback addresses only ({resolved:?})"
    );

    let app = TestApp::builder()
        .config(|c| {
            c.security.allow_private_targets = false;
            c.retry.max_attempts = Some(1);
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .expect("port")
        .to_string();
    let (key, tenant) = app.tenant().await;
    // The URL names a host, not an address: creation accepts it.
    app.endpoint(&key, &tenant, &format!("http://{host}:{port}/hook"), None)
        .await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;

    let d = &app.settled_deliveries(&key, &tenant, &event, 1).await[0];
    assert_eq!(d["status"], "dead");
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
    // The attempt reads exactly as for a name that does not exist: a tenant cannot
    // learn which internal names there are.
    let unknown = "no-such-host.invalid";
    app.endpoint(
        &key,
        &tenant,
        &format!("http://{unknown}:{port}/hook"),
        None,
    )
    .await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 2 }))
        .await;
    let both = app.settled_deliveries(&key, &tenant, &event, 2).await;
    let error = |d: &serde_json::Value| d["last_error"].as_str().expect("error").to_string();
    let errors: Vec<String> = both.iter().map(error).collect();
    let internal = errors
        .iter()
        .find(|e| e.contains(&host))
        .expect("the internal name's error");
    let missing = errors
        .iter()
        .find(|e| e.contains(unknown))
        .expect("the unknown name's error");
    assert_eq!(
        internal.replace(&host, "NAME"),
        missing.replace(unknown, "NAME"),
        "{errors:?}"
    );
    assert!(both.iter().all(|d| d["status"] == "dead"), "{both:?}");
}
