//! Re-sending failed deliveries: one at a time, or a window as a durable job.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp};

fn one_attempt(c: &mut hookrelay_core::Config) {
    c.retry.max_attempts = Some(1);
}

#[tokio::test]
async fn replaying_a_dead_delivery_sends_it_again_with_the_same_webhook_id() {
    let app = TestApp::builder().config(one_attempt).start().await;
    let receiver = Receiver::failing_first(1).await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let d = app.settled_deliveries(&key, &tenant, &event, 1).await[0].clone();
    assert_eq!(d["status"], "dead");
    let id = d["id"].as_str().expect("id");

    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/deliveries/{id}/replay"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let path = format!("/v1/tenants/{tenant}/deliveries/{id}");
    let done = app
        .wait_for_json(&path, &key, "the replay", |d| d["status"] == "delivered")
        .await;
    assert_eq!(done["attempts"], 2);
    let got = receiver.wait_for(2).await;
    let ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids, HashSet::from([id]));

    let (status, _) = app
        .post(
            &format!(
                "/v1/tenants/{tenant}/deliveries/{}/replay",
                uuid::Uuid::nil()
            ),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn recover_resends_only_the_window_as_a_durable_job() {
    let app = TestApp::builder().config(one_attempt).start().await;
    let receiver = Receiver::failing_first(4).await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;

    // Events `payloads`, each of whose one delivery ends dead.
    let dead_events = async |payloads: std::ops::Range<i32>| {
        let mut ids = Vec::new();
        for n in payloads {
            let body = json!({ "event_type": "x", "payload": n });
            let e = app.event(&key, &tenant, body).await;
            let settled = app.settled_deliveries(&key, &tenant, &e, 1).await;
            assert_eq!(settled[0]["status"], "dead");
            ids.push(e);
        }
        ids
    };
    let before = dead_events(0..2).await;
    let since = chrono::Utc::now();
    let inside = dead_events(2..4).await;

    let (status, job) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}/recover"),
            &key,
            json!({ "since": since.to_rfc3339() }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job_path = format!("/v1/jobs/{}", job["id"].as_str().expect("id"));
    let finished = app
        .wait_for_json(&job_path, &key, "the job", |j| j["status"] == "done")
        .await;
    assert_eq!(finished["done_count"], 2);

    for e in &inside {
        let path = format!("/v1/tenants/{tenant}/events/{e}/deliveries");
        app.wait_for_json(&path, &key, "recovered delivery", |b| {
            b["data"][0]["status"] == "delivered"
        })
        .await;
    }
    for e in &before {
        assert_eq!(
            app.settled_deliveries(&key, &tenant, e, 1).await[0]["status"],
            "dead",
            "outside the window"
        );
    }
    assert_eq!(receiver.received().len(), 6);

    let (status, _) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}/recover"),
            &key,
            json!({ "since": "yesterday" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn recover_resends_deliveries_cancelled_while_the_endpoint_was_disabled() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    // Routed while the endpoint was enabled, sent after it was disabled: cancelled.
    let routed = crate::messages::route_unpublished(&app, &tenant, Duration::from_secs(3600)).await;
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let (status, _) = app.patch(&path, &key, json!({ "disabled": true })).await;
    assert_eq!(status, StatusCode::OK);
    app.publisher().send_now(&routed).await;
    app.wait_for_count(
        "SELECT count(*) FROM deliveries WHERE id = $1 AND status = 'cancelled'",
        &routed[0].id.to_string(),
        1,
    )
    .await;
    let (status, _) = app.patch(&path, &key, json!({ "disabled": false })).await;
    assert_eq!(status, StatusCode::OK);

    let (status, job) = app
        .post(
            &format!("{path}/recover"),
            &key,
            json!({ "since": since.to_rfc3339() }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-id"), routed[0].id.to_string());
    app.wait_for_delivered(1).await;
}
