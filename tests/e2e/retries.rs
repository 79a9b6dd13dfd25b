//! The retry engine against real services: retries until success with the same
//! `webhook-id`, dead after the last attempt, `Retry-After` honoured, 410 disables.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{Receiver, Subscriber, TestApp};

fn fast(c: &mut hookrelay_core::Config) {
    c.retry.schedule = vec![Duration::from_millis(50)];
    c.retry.max_attempts = Some(4);
}

async fn attempts(app: &TestApp, key: &str, tenant: &str, delivery: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/v1/tenants/{tenant}/deliveries/{delivery}/attempts"),
            key,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    body["data"].as_array().expect("data").clone()
}

/// Waits until the event's only delivery reaches `status`.
/// When an attempt (as the API shows it) was made.
fn at(attempt: &Value) -> DateTime<Utc> {
    attempt["created_at"]
        .as_str()
        .expect("time")
        .parse()
        .expect("rfc3339")
}

async fn delivery_in(app: &TestApp, key: &str, tenant: &str, event: &str, status: &str) -> Value {
    let path = format!("/v1/tenants/{tenant}/events/{event}/deliveries");
    let body = app
        .wait_for_json(&path, key, status, |b| b["data"][0]["status"] == status)
        .await;
    body["data"][0].clone()
}

#[tokio::test]
async fn a_flaky_endpoint_gets_retried_until_it_succeeds_with_one_webhook_id() {
    let app = TestApp::builder().config(fast).start().await;
    let receiver = Receiver::scripted(
        vec![
            (StatusCode::INTERNAL_SERVER_ERROR, None),
            (StatusCode::BAD_GATEWAY, None),
        ],
        StatusCode::OK,
        "ok",
    )
    .await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "x", "payload": { "n": 1 } }),
        )
        .await;

    let d = delivery_in(&app, &key, &tenant, &event, "delivered").await;
    assert_eq!(d["attempts"], 3);
    assert!(d["next_attempt_at"].is_null());
    let got = receiver.wait_for(3).await;
    let ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "every retry reuses the webhook-id");
    assert_eq!(ids.into_iter().next(), d["id"].as_str());
    let statuses: Vec<Value> = attempts(&app, &key, &tenant, d["id"].as_str().expect("id"))
        .await
        .iter()
        .map(|a| a["response_status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(500), json!(502), json!(200)]);
}

#[tokio::test]
async fn a_delivery_that_never_succeeds_ends_dead_after_the_last_attempt() {
    let app = TestApp::builder().config(fast).start().await;
    let receiver = Receiver::replying(StatusCode::SERVICE_UNAVAILABLE, "down").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;

    let d = delivery_in(&app, &key, &tenant, &event, "dead").await;
    assert_eq!(d["attempts"], 4);
    assert!(d["next_attempt_at"].is_null());
    assert!(
        d["last_error"]
            .as_str()
            .expect("error")
            .contains("gave up after 4 attempts"),
        "{d}"
    );
    assert_eq!(
        attempts(&app, &key, &tenant, d["id"].as_str().expect("id"))
            .await
            .len(),
        4
    );
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn non_retryable_statuses_end_the_delivery_at_once() {
    let app = TestApp::builder()
        .config(|c| {
            fast(c);
            c.retry.non_retryable = vec![422];
        })
        .start()
        .await;
    let receiver = Receiver::replying(StatusCode::UNPROCESSABLE_ENTITY, "never").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let d = delivery_in(&app, &key, &tenant, &event, "dead").await;
    assert_eq!(d["attempts"], 1);
    assert!(
        d["last_error"]
            .as_str()
            .expect("error")
            .contains("HTTP 422 is not retried"),
        "{d}"
    );
}

#[tokio::test]
async fn retry_after_on_a_429_is_honoured() {
    let app = TestApp::builder().config(fast).start().await;
    let receiver = Receiver::scripted(
        vec![(StatusCode::TOO_MANY_REQUESTS, Some("2"))],
        StatusCode::OK,
        "ok",
    )
    .await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;

    let d = delivery_in(&app, &key, &tenant, &event, "delivered").await;
    let list = attempts(&app, &key, &tenant, d["id"].as_str().expect("id")).await;
    assert_eq!(list.len(), 2);
    let gap = at(&list[1]) - at(&list[0]);
    // The schedule alone would have retried after ~50 ms.
    assert!(
        gap >= chrono::Duration::milliseconds(1900),
        "second attempt came {gap} after the first"
    );
}

#[tokio::test]
async fn a_410_kills_the_delivery_and_disables_the_endpoint() {
    let app = TestApp::builder().config(fast).start().await;
    let gone = Receiver::replying(StatusCode::GONE, "bye").await;
    let healthy = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&gone.url).await;
    let first = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let d = delivery_in(&app, &key, &tenant, &first, "dead").await;
    assert_eq!(d["attempts"], 1);
    assert!(
        d["last_error"].as_str().expect("error").contains("410"),
        "{d}"
    );

    let shown = app
        .wait_for_json(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}"),
            &key,
            "endpoint disabled",
            |e| e["disabled"] == true,
        )
        .await;
    assert!(
        shown["disabled_reason"]
            .as_str()
            .expect("reason")
            .contains("410"),
        "{shown}"
    );

    // Later events skip it; re-enabling is one call.
    app.endpoint(&key, &tenant, &healthy.url, None).await;
    let second = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 2 }))
        .await;
    assert_eq!(
        app.settled_deliveries(&key, &tenant, &second, 1).await[0]["status"],
        "delivered"
    );
    assert_eq!(gone.received().len(), 1);
    let (status, enabled) = app
        .patch(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}"),
            &key,
            json!({ "disabled": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(enabled["disabled"], false);
    assert!(enabled["disabled_reason"].is_null());
}

#[tokio::test]
async fn the_breaker_opens_parks_without_burning_attempts_probes_and_closes() {
    let app = TestApp::builder()
        .config(|c| {
            c.retry.schedule = vec![Duration::from_millis(50)];
            c.retry.max_attempts = Some(10);
            c.breaker.consecutive_failures = 3;
            c.breaker.open_for = Duration::from_secs(1);
        })
        .start()
        .await;
    let receiver = Receiver::failing_first(3).await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;

    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let open = app
        .wait_for_json(&path, &key, "an open circuit", |e| {
            e["circuit"]["state"] == "open"
        })
        .await;
    assert!(open["circuit"]["next_probe_at"].is_string(), "{open}");

    let d = delivery_in(&app, &key, &tenant, &event, "delivered").await;
    assert_eq!(
        d["attempts"], 4,
        "three failures and the probe: parking used no attempts"
    );
    let list = attempts(&app, &key, &tenant, d["id"].as_str().expect("id")).await;
    let gap = at(&list[3]) - at(&list[2]);
    assert!(
        gap >= chrono::Duration::milliseconds(900),
        "the probe waited for the open period, came after {gap}"
    );
    app.wait_for_json(&path, &key, "a closed circuit", |e| {
        e["circuit"]["state"] == "closed"
    })
    .await;
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled_with_a_reason() {
    let app = TestApp::builder()
        .config(|c| {
            c.retry.schedule = vec![Duration::from_millis(300)];
            c.retry.max_attempts = Some(50);
            c.delivery.disable_failing_after = Duration::from_secs(1);
        })
        .start()
        .await;
    let receiver = Receiver::replying(StatusCode::INTERNAL_SERVER_ERROR, "down").await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;

    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let disabled = app
        .wait_for_json(&path, &key, "the endpoint disabled", |e| {
            e["disabled"] == true
        })
        .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .expect("reason")
            .starts_with("every attempt failed since"),
        "{disabled}"
    );
    // Its open delivery is cancelled rather than retried forever.
    let d = delivery_in(&app, &key, &tenant, &event, "cancelled").await;
    assert!(d["attempts"].as_i64().expect("attempts") >= 2, "{d}");
}
