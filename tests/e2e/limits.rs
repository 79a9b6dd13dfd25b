//! Per-endpoint protection against real services: the rate limit and the cap on
//! requests in flight hold, and excess is parked without burning attempts.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{Receiver, TestApp};

async fn limited_endpoint(
    app: &TestApp,
    key: &str,
    tenant: &str,
    url: &str,
    limits: serde_json::Value,
) -> serde_json::Value {
    let mut body = json!({ "url": url });
    body.as_object_mut()
        .expect("object")
        .extend(limits.as_object().expect("object").clone());
    let (status, created) = app
        .post(&format!("/v1/tenants/{tenant}/endpoints"), key, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// In any span t, at most `burst + rate * t` arrivals (plus one for timing edges).
fn assert_within_rate(times: &[std::time::Instant], burst: f64, rate: f64) {
    for i in 0..times.len() {
        for j in i..times.len() {
            let span = times[j].duration_since(times[i]).as_secs_f64();
            assert!(
                ((j - i + 1) as f64) <= burst + rate * span + 1.0,
                "{} arrivals within {span:.3}s",
                j - i + 1
            );
        }
    }
}

pub(crate) async fn post_batch(app: &TestApp, key: &str, tenant: &str, n: usize) {
    let events: Vec<_> = (0..n)
        .map(|i| json!({ "event_type": "x", "payload": { "i": i } }))
        .collect();
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/events/batch"),
            key,
            json!({ "events": events }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn the_rate_limit_holds_and_parks_the_excess_without_burning_attempts() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let created = limited_endpoint(
        &app,
        &key,
        &tenant,
        &receiver.url,
        json!({ "rate_limit_per_second": 5, "rate_limit_burst": 2 }),
    )
    .await;
    assert_eq!(created["rate_limit_per_second"], 5);
    assert_eq!(created["rate_limit_burst"], 2);

    post_batch(&app, &key, &tenant, 12).await;
    let got = receiver.wait_for(12).await;
    app.wait_for_delivered(12).await;

    let times: Vec<_> = got.iter().map(|r| r.at).collect();
    assert_within_rate(&times, 2.0, 5.0);
    let total = times.last().expect("last").duration_since(times[0]);
    assert!(
        total >= Duration::from_millis(1800),
        "12 requests at 5/s after a burst of 2 take ~2 s, took {total:?}"
    );
    assert_eq!(
        app.count("attempts").await,
        12,
        "waiting for the limit is not an attempt"
    );
}

#[tokio::test]
async fn the_in_flight_cap_holds() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::slow(Duration::from_millis(150)).await;
    let (key, tenant) = app.tenant().await;
    limited_endpoint(
        &app,
        &key,
        &tenant,
        &receiver.url,
        json!({ "max_in_flight": 2 }),
    )
    .await;

    post_batch(&app, &key, &tenant, 10).await;
    receiver.wait_for(10).await;
    app.wait_for_delivered(10).await;
    assert!(
        receiver.max_concurrency() <= 2,
        "saw {} requests at once",
        receiver.max_concurrency()
    );
    assert_eq!(
        receiver.max_concurrency(),
        2,
        "the cap is used, not just respected"
    );
    assert_eq!(app.count("attempts").await, 10);
}

#[tokio::test]
async fn an_endpoint_timeout_applies_and_limits_are_validated() {
    let app = TestApp::builder()
        .config(|c| c.retry.max_attempts = Some(1))
        .start()
        .await;
    let receiver = Receiver::slow(Duration::from_millis(1500)).await;
    let (key, tenant) = app.tenant().await;
    for bad in [
        json!({ "rate_limit_per_second": 0 }),
        json!({ "max_in_flight": -1 }),
        json!({ "timeout_ms": 10 }),
        json!({ "timeout_ms": 3_600_000 }),
    ] {
        let mut body = json!({ "url": receiver.url });
        body.as_object_mut()
            .expect("object")
            .extend(bad.as_object().expect("object").clone());
        let (status, res) = app
            .post(&format!("/v1/tenants/{tenant}/endpoints"), &key, body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {res}");
    }
    let created = limited_endpoint(
        &app,
        &key,
        &tenant,
        &receiver.url,
        json!({ "timeout_ms": 300 }),
    )
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
            .starts_with("timed out"),
        "{d}"
    );

    // PATCH null removes a limit.
    let path = format!(
        "/v1/tenants/{tenant}/endpoints/{}",
        created["id"].as_str().expect("id")
    );
    let (_, patched) = app
        .patch(
            &path,
            &key,
            json!({ "timeout_ms": null, "max_in_flight": 3 }),
        )
        .await;
    assert!(patched["timeout_ms"].is_null(), "{patched}");
    assert_eq!(patched["max_in_flight"], 3);
}

#[tokio::test]
async fn the_rate_limit_holds_across_two_dispatchers() {
    let mut app = TestApp::spawn().await;
    app.start_another_dispatcher();
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    limited_endpoint(
        &app,
        &key,
        &tenant,
        &receiver.url,
        json!({ "rate_limit_per_second": 4, "rate_limit_burst": 1 }),
    )
    .await;

    // Two batches, so both dispatchers' routers take part.
    post_batch(&app, &key, &tenant, 6).await;
    post_batch(&app, &key, &tenant, 6).await;
    let got = receiver.wait_for(12).await;
    app.wait_for_delivered(12).await;
    // One shard has one active consumer in the fleet, so the limit is exact.
    let times: Vec<_> = got.iter().map(|r| r.at).collect();
    assert_within_rate(&times, 1.0, 4.0);
    assert_eq!(app.count("attempts").await, 12);
}
