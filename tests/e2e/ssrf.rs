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
    let guard = hookrelay_core::target::TargetPolicy::default();
    assert!(
        resolved.iter().all(|a| !guard.permits(a.ip())),
        "precondition: this machine's hostname {host} resolves to private or loopback addresses only ({resolved:?})"
    );

    let app = TestApp::spawn_with(
        |c| {
            c.security.allow_private_targets = false;
            c.retry.max_attempts = Some(1);
        },
        true,
    )
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
        d["last_error"]
            .as_str()
            .expect("error")
            .starts_with(&format!("blocked: {host} resolves only to private")),
        "{d}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
}
