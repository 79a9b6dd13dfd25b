//! Egress through a real proxy (Debian's tinyproxy, which `deploy/local/test.sh`
//! starts): deliveries go through it, its log shows each tunnel to the checked
//! address, and a target the address rules deny is refused before the proxy is
//! asked for anything.

use std::sync::Arc;

use axum::http::StatusCode;
use hookrelay_core::config::Sensitive;
use hookrelay_core::target_policy::TargetPolicy;
use hookrelay_dispatcher::reach::egress::{self, ProxyAddr};
use serde_json::json;

use crate::helpers::{Receiver, TestApp};

fn proxy() -> (String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is unset: run deploy/local/test.sh, which starts the proxy")
        })
    };
    (
        var("HOOKRELAY_TEST_PROXY_URL"),
        var("HOOKRELAY_TEST_PROXY_LOG"),
    )
}

/// The proxy log's lines that ask for a tunnel to `port`.
fn tunnels_to(log: &str, port: u16) -> usize {
    let text = std::fs::read_to_string(log).expect("proxy log");
    text.lines()
        .filter(|l| l.contains("Request (") && l.contains(&format!("CONNECT 127.0.0.1:{port} ")))
        .count()
}

fn port_of(url: &str) -> u16 {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.port())
        .expect("port")
}

#[tokio::test]
async fn deliveries_go_through_the_egress_proxy_to_the_checked_address() {
    let (proxy_url, log) = proxy();
    let app = TestApp::builder()
        .config(|c| c.delivery.egress_proxy = Some(Sensitive::new(proxy_url.clone())))
        .start()
        .await;
    let receiver = Receiver::start().await;
    let port = port_of(&receiver.url);
    // Through a name: the dispatcher resolves it, the proxy gets the address.
    let url = receiver.url.replace("127.0.0.1", "localhost");
    let (key, tenant) = app.tenant().await;
    app.endpoint(&key, &tenant, &url, None).await;
    for n in 0..3 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": { "n": n } }),
        )
        .await;
    }
    let got = receiver.wait_for(3).await;
    assert!(
        got.iter()
            .all(|r| r.header("webhook-signature").starts_with("v1,"))
    );
    app.wait_for_delivered(3).await;
    let tunnels = tunnels_to(&log, port);
    assert!(
        (1..=3).contains(&tunnels),
        "{tunnels} tunnels to 127.0.0.1:{port}"
    );
    let by_name = std::fs::read_to_string(&log)
        .expect("log")
        .contains(&format!("localhost:{port}"));
    assert!(!by_name, "the proxy never resolves the target's name");
}

#[tokio::test]
async fn a_denied_target_is_refused_without_asking_the_proxy() {
    let (proxy_url, log) = proxy();
    hookrelay_dispatcher::client::install_tls_provider();
    // The installation's default rules: loopback is denied.
    let relay = egress::start(
        ProxyAddr::parse(&proxy_url).expect("proxy"),
        Arc::new(TargetPolicy::default()),
    )
    .expect("relay");
    let receiver = Receiver::start().await;
    let port = port_of(&receiver.url);
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&relay.url).expect("proxy"))
        .build()
        .expect("client");
    for url in [
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/"),
    ] {
        let res = client
            .post(&url)
            .body("{}")
            .send()
            .await
            .expect("the relay answers");
        assert_eq!(
            res.status().as_u16(),
            StatusCode::FORBIDDEN.as_u16(),
            "{url}"
        );
    }
    let tls = client
        .post(format!("https://localhost:{port}/"))
        .send()
        .await;
    assert!(tls.is_err(), "no tunnel for a denied target");
    assert!(receiver.received().is_empty());
    assert_eq!(tunnels_to(&log, port), 0, "the proxy was never asked");
}
