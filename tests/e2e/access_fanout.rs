//! Access changes reach every gateway at once on the broker's fanout: with two
//! gateway processes, a key revoked through one is refused by the other, and a
//! tenant deleted through one is not found by the other (whose cache held it),
//! long before their 30 s reload.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, TestApp, spawn_ready};

/// How soon the other gateway must refuse: far inside the 30 s reload.
const SOON: Duration = Duration::from_secs(2);

async fn status(http: &reqwest::Client, url: &str, token: &str) -> u16 {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// POSTs `body` to `url` with `token`; the JSON answer.
async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    http.post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// Polls until `url` answers `want` with `token`; how long it took.
async fn until_status(http: &reqwest::Client, url: &str, token: &str, want: u16) -> Duration {
    let started = tokio::time::Instant::now();
    crate::helpers::eventually(format!("{url} to answer {want}"), || async {
        match status(http, url, token).await {
            got if got == want => Ok(()),
            got => Err(got.to_string()),
        }
    })
    .await;
    started.elapsed()
}

#[tokio::test]
async fn a_revocation_or_deletion_through_one_gateway_is_refused_by_the_other_at_once() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let gateway = || {
        let mut g = app.hookrelay_command("gateway");
        g.env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN);
        g
    };
    let (_one, one) = spawn_ready(gateway()).await;
    let (_two, two) = spawn_ready(gateway()).await;
    let http = reqwest::Client::new();

    // A key made through the first works on the second (which caches it).
    let made = post(
        &http,
        format!("{one}/v1/api-keys"),
        ADMIN_TOKEN,
        json!({ "name": "to revoke" }),
    )
    .await;
    let (id, key) = (
        made["id"].as_str().expect("id"),
        made["key"].as_str().expect("key"),
    );
    let tenant = post(
        &http,
        format!("{one}/v1/tenants"),
        key,
        json!({ "name": "Fanout" }),
    )
    .await;
    let tenant = tenant["id"].as_str().expect("tenant id");
    let on_two = format!("{two}/v1/tenants/{tenant}");
    assert_eq!(status(&http, &on_two, key).await, 200);

    // Revoked through the first: the second refuses it at once.
    let res = http
        .delete(format!("{one}/v1/api-keys/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status().as_u16(), 204);
    let took = until_status(&http, &on_two, key, 401).await;
    assert!(took < SOON, "the second gateway refused after {took:?}");

    // A tenant deleted through the first is not found on the second, whose cache
    // holds it from the ingest before.
    let other = post(
        &http,
        format!("{one}/v1/tenants"),
        ADMIN_TOKEN,
        json!({ "name": "Deleted soon" }),
    )
    .await;
    let other = other["id"].as_str().expect("tenant id");
    let on_two = format!("{two}/v1/tenants/{other}/events");
    let ingest = |token: &'static str| {
        http.post(on_two.clone())
            .bearer_auth(token)
            .json(&json!({ "event_type": "x", "payload": 1 }))
            .send()
    };
    assert_eq!(
        ingest(ADMIN_TOKEN).await.expect("ingest").status().as_u16(),
        202
    );
    let res = http
        .delete(format!("{one}/v1/tenants/{other}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("delete tenant");
    assert_eq!(res.status().as_u16(), 202);
    let started = tokio::time::Instant::now();
    crate::helpers::eventually("ingest to answer 404", || async {
        match ingest(ADMIN_TOKEN).await.expect("ingest").status().as_u16() {
            404 => Ok(()),
            code => Err(code.to_string()),
        }
    })
    .await;
    assert!(started.elapsed() < SOON, "{:?}", started.elapsed());
}
