//! Delivery controls against the real services: pause holds deliveries without an
//! attempt and resume sends them oldest first; cancel by delivery, by event and a
//! whole backlog (a job), each on record with who did it and recoverable; payload
//! filters and channels decide at routing; an invalid filter is a `422` that
//! writes nothing.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Receiver, Subscriber, TestApp, eventually};

fn seqs(receiver: &Receiver) -> Vec<u64> {
    receiver
        .received()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("JSON");
            body["seq"].as_u64().expect("seq")
        })
        .collect()
}

#[tokio::test]
async fn a_paused_endpoint_holds_its_deliveries_and_resume_sends_them_oldest_first() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let (status, e) = app.patch(&path, &key, json!({ "paused": true })).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["paused"], true);
    assert!(e["paused_at"].is_string(), "{e}");
    for n in 0..5 {
        let body = json!({ "event_type": "order.paid", "payload": { "seq": n } });
        app.event(&key, &tenant, body).await;
    }
    let backlog = app
        .wait_for_json(&format!("{path}/backlog"), &key, "five held", |b| {
            b["waiting"] == 5
        })
        .await;
    assert!(backlog["oldest_waiting_at"].is_string(), "{backlog}");
    let burned: i64 = sqlx::query_scalar("SELECT coalesce(sum(attempts), 0) FROM deliveries")
        .fetch_one(app.store.pool())
        .await
        .expect("attempts");
    assert_eq!(burned, 0, "no attempt is used while paused");
    assert!(receiver.received().is_empty());

    let (status, e) = app.patch(&path, &key, json!({ "paused": false })).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert!(e["paused_at"].is_null(), "{e}");
    receiver.wait_for(5).await;
    let mut got = seqs(&receiver);
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2, 3, 4], "each once");
    app.wait_for_count(
        "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'delivered' AND attempts = 1",
        &endpoint,
        5,
    )
    .await;
    for action in ["endpoint.paused", "endpoint.resumed"] {
        let (_, audit) = app
            .get(&format!("/v1/tenants/{tenant}/audit?action={action}"), &key)
            .await;
        let entries = audit["data"].as_array().expect("entries");
        assert_eq!(entries.len(), 1, "{action}: {audit}");
        assert_eq!(entries[0]["target_id"], endpoint.as_str());
    }
}

#[tokio::test]
async fn resume_sends_the_backlog_at_the_endpoints_rate() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let limited = json!({ "paused": true, "rate_limit_per_second": 5, "rate_limit_burst": 1 });
    app.patch(&path, &key, limited).await;
    for n in 0..6 {
        let body = json!({ "event_type": "order.paid", "payload": { "seq": n } });
        app.event(&key, &tenant, body).await;
    }
    app.wait_for_json(&format!("{path}/backlog"), &key, "six held", |b| {
        b["waiting"] == 6
    })
    .await;
    app.patch(&path, &key, json!({ "paused": false })).await;
    let got = receiver.wait_for(6).await;
    // At 5/s with no burst, six requests span at least five gaps of 200 ms.
    let span = got[5].at - got[0].at;
    assert!(span >= std::time::Duration::from_millis(900), "{span:?}");
    let mut all = seqs(&receiver);
    all.sort_unstable();
    assert_eq!(all, (0..6).collect::<Vec<_>>(), "each once");
}

#[tokio::test]
async fn cancelling_a_delivery_an_event_and_a_backlog_keeps_them_on_record_and_recoverable() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let (other, _) = app.endpoint(&key, &tenant, &receiver.url, None).await;
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let other_path = format!("/v1/tenants/{tenant}/endpoints/{other}");
    for p in [&path, &other_path] {
        app.patch(p, &key, json!({ "paused": true })).await;
    }
    let mut events = Vec::new();
    for n in 0..4 {
        let body = json!({ "event_type": "order.paid", "payload": { "seq": n } });
        events.push(app.event(&key, &tenant, body).await);
    }
    app.wait_for_json(&format!("{other_path}/backlog"), &key, "four held", |b| {
        b["waiting"] == 4
    })
    .await;
    let delivery_of = |event: String, ep: String| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, uuid::Uuid>(
                "SELECT id FROM deliveries WHERE event_id = $1::uuid AND endpoint_id = $2::uuid",
            )
            .bind(event)
            .bind(ep)
            .fetch_one(app.store.pool())
            .await
            .expect("a delivery")
        }
    };
    // One delivery.
    let one = delivery_of(events[0].clone(), endpoint.clone()).await;
    let (status, d) = app
        .post(
            &format!("/v1/tenants/{tenant}/deliveries/{one}/cancel"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "cancelled");
    assert!(
        d["cancelled_by"].as_str().is_some_and(|by| !by.is_empty()),
        "{d}"
    );
    let (status, again) = app
        .post(
            &format!("/v1/tenants/{tenant}/deliveries/{one}/cancel"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "not_cancellable");
    // Every delivery of one event (both endpoints).
    let (status, c) = app
        .post(
            &format!("/v1/tenants/{tenant}/events/{}/cancel", events[1]),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["cancelled"], 2);
    // The rest of one endpoint's backlog, as a job.
    let (status, job) = app
        .post(&format!("{other_path}/backlog/cancel"), &key, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["kind"], "cancel_backlog");
    let job_path = format!("/v1/jobs/{}", job["id"].as_str().expect("id"));
    let done = app
        .wait_for_json(&job_path, &key, "the cancel job to finish", |j| {
            j["status"] == "done"
        })
        .await;
    assert_eq!(done["done_count"], 3, "{done}");
    let cancelled: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT endpoint_id::text, cancelled_by FROM deliveries WHERE status = 'cancelled' ORDER BY id",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("cancelled");
    assert_eq!(cancelled.len(), 6, "{cancelled:?}");
    assert!(
        cancelled.iter().all(|(_, by)| by.is_some()),
        "{cancelled:?}"
    );
    for action in [
        "delivery.cancelled",
        "event.deliveries_cancelled",
        "endpoint.backlog_cancel_started",
    ] {
        let (_, audit) = app
            .get(&format!("/v1/tenants/{tenant}/audit?action={action}"), &key)
            .await;
        assert_eq!(
            audit["data"].as_array().map(Vec::len),
            Some(1),
            "{action}: {audit}"
        );
    }

    // Resumed, the first endpoint sends only what was not cancelled (events 2, 3);
    // recovering brings its cancelled ones back.
    app.patch(&path, &key, json!({ "paused": false })).await;
    app.patch(&other_path, &key, json!({ "paused": false }))
        .await;
    app.wait_for_count(
        "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'delivered'",
        &endpoint,
        2,
    )
    .await;
    let (status, _) = app
        .post(
            &format!("{path}/recover"),
            &key,
            json!({ "since": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_for_count(
        "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'delivered'",
        &endpoint,
        4,
    )
    .await;
    let other_delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE endpoint_id = $1::uuid AND status <> 'cancelled'",
    )
    .bind(&other)
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert_eq!(
        other_delivered, 0,
        "the other endpoint's backlog stays cancelled"
    );
}

#[tokio::test]
async fn filters_and_channels_decide_at_routing_and_bad_filters_are_refused() {
    let app = TestApp::spawn().await;
    let big = Receiver::start().await;
    let eu = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let endpoints = format!("/v1/tenants/{tenant}/endpoints");
    let (status, big_ep) = app
        .post(
            &endpoints,
            &key,
            json!({
                "url": big.url,
                "filter": { "$event_type": { "$prefix": "order." }, "data.amount": { "$gte": 100 } }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{big_ep}");
    let (status, eu_ep) = app
        .post(
            &endpoints,
            &key,
            json!({ "url": eu.url, "channels": ["eu"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{eu_ep}");
    assert_eq!(eu_ep["channels"], json!(["eu"]));

    let send = |event_type: &str, payload: Value, channels: Option<Value>| {
        let mut body = json!({ "event_type": event_type, "payload": payload });
        if let Some(c) = channels {
            body["channels"] = c;
        }
        app.event(&key, &tenant, body)
    };
    let small = send("order.paid", json!({ "data": { "amount": 5 } }), None).await;
    let large = send(
        "order.paid",
        json!({ "data": { "amount": 500 } }),
        Some(json!(["eu"])),
    )
    .await;
    let user = send(
        "user.created",
        json!({ "data": { "amount": 500 } }),
        Some(json!(["us"])),
    )
    .await;
    let got = big.wait_for(1).await;
    eu.wait_for(1).await;
    assert!(!got[0].header("webhook-id").is_empty());
    // Routing made no delivery for what the filters and channels turned away.
    for (event, expected) in [(&small, 0), (&large, 2), (&user, 0)] {
        eventually(format!("{expected} deliveries of {event}"), || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE event_id = $1::uuid")
                    .bind(event)
                    .fetch_one(app.store.pool())
                    .await
                    .expect("count");
            if n == expected {
                Ok(())
            } else {
                Err(n.to_string())
            }
        })
        .await;
    }
    assert_eq!(big.received().len(), 1);
    assert_eq!(eu.received().len(), 1);

    // Would the filtered endpoint receive the small order? The verdict says why not.
    let big_id = big_ep["id"].as_str().expect("id");
    let test = format!("{endpoints}/{big_id}/filter/test");
    let (status, verdict) = app.post(&test, &key, json!({ "event_id": small })).await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(
        verdict,
        json!({ "receives": false, "event_type": true, "channels": true, "filter": false })
    );
    let (_, verdict) = app
        .post(
            &test,
            &key,
            json!({ "event_id": small, "filter": { "data.amount": { "$lt": 10 } } }),
        )
        .await;
    assert_eq!(verdict["receives"], true, "{verdict}");

    // Invalid filters: 422 naming the problem, nothing written.
    let before = app.count("endpoints").await;
    let (status, err) = app
        .post(
            &endpoints,
            &key,
            json!({ "url": big.url, "filter": { "data.amount": { "$gtx": 1 } } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let message = err["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("data.amount.$gtx") && message.contains("unknown operator"),
        "{message}"
    );
    let mut deep = json!({ "a": 1 });
    for _ in 0..12 {
        deep = json!({ "$not": deep });
    }
    let (status, err) = app
        .patch(
            &format!("{endpoints}/{big_id}"),
            &key,
            json!({ "filter": deep }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deeper")),
        "{err}"
    );
    // What PostgreSQL could not store and give back: a NUL, the largest double.
    for (filter, problem) in [
        (json!({ "a\u{0}b": 1 }), "NUL"),
        (json!({ "a": { "$in": ["x\u{0}"] } }), "NUL"),
        (json!({ "a": [1.0, f64::MAX] }), "1e300"),
    ] {
        let (status, err) = app
            .post(
                &endpoints,
                &key,
                json!({ "url": big.url, "filter": filter }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(problem)),
            "{err}"
        );
    }
    let (status, err) = app
        .post(
            &endpoints,
            &key,
            json!({ "url": big.url, "channels": ["has space"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(app.count("endpoints").await, before);
    let (_, unchanged) = app.get(&format!("{endpoints}/{big_id}"), &key).await;
    assert_eq!(unchanged["filter"], big_ep["filter"]);
    // A filter change is in the audit log, with the filter.
    let (_, e) = app
        .patch(
            &format!("{endpoints}/{big_id}"),
            &key,
            json!({ "filter": null }),
        )
        .await;
    assert!(e["filter"].is_null(), "{e}");
    let (_, audit) = app
        .get(
            &format!("/v1/tenants/{tenant}/audit?action=endpoint.updated"),
            &key,
        )
        .await;
    assert_eq!(
        audit["data"][0]["details"]["fields"],
        json!(["filter"]),
        "{audit}"
    );
}
