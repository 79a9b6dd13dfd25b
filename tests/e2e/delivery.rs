//! The path of an event: ingest → routing → signed POST → attempt on record.

use std::collections::HashSet;

use axum::http::StatusCode;
use hookrelay_signature::{Secret, Verifier};
use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp};

#[tokio::test]
async fn an_event_reaches_its_endpoint_signed_and_on_record() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let (endpoint, secret) = app.endpoint(&key, &tenant, &receiver.url, None).await;
    assert!(secret.starts_with("whsec_"));

    let payload = json!({ "order": 42, "items": ["a", "b"], "note": "ünïcode" });
    let event = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": payload }),
        )
        .await;

    let got = receiver.wait_for(1).await;
    let req = &got[0];
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&req.body).expect("json body"),
        payload
    );
    assert_eq!(req.header("content-type"), "application/json");

    // Our own verifier accepts it...
    let verifier = Verifier::new(vec![Secret::from_whsec(&secret).expect("secret")]);
    verifier
        .verify(
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            req.header("webhook-signature"),
            &req.body,
        )
        .expect("hookrelay-signature verifies the delivery");
    // ...and so does an independent Standard Webhooks library, unchanged.
    standardwebhooks::Webhook::new(&secret)
        .expect("library parses our secret")
        .verify(&req.body, &req.headers)
        .expect("the standardwebhooks crate verifies the delivery");

    // The API tells the same story: one delivery, delivered, one attempt with a 200.
    let deliveries = app.settled_deliveries(&key, &tenant, &event, 1).await;
    let d = &deliveries[0];
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["endpoint_id"], endpoint.as_str());
    assert_eq!(
        d["id"],
        req.header("webhook-id"),
        "webhook-id is the delivery id"
    );
    let delivery_id = d["id"].as_str().expect("id");

    let (status, attempts) = app
        .get(
            &format!("/v1/tenants/{tenant}/deliveries/{delivery_id}/attempts"),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let a = &attempts["data"][0];
    assert_eq!(attempts["data"].as_array().expect("list").len(), 1);
    assert_eq!(a["response_status"], 200);
    assert_eq!(a["response_body"], "ok");
    assert_eq!(a["request_headers"]["webhook-id"], req.header("webhook-id"));
    assert_eq!(
        a["request_headers"]["webhook-signature"],
        req.header("webhook-signature")
    );
    assert!(a["error"].is_null());

    let (status, stored) = app
        .get(&format!("/v1/tenants/{tenant}/events/{event}"), &key)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["payload"], payload);
    assert_eq!(stored["event_type"], "order.created");
    assert_eq!(receiver.received().len(), 1, "exactly one POST");
}

#[tokio::test]
async fn events_fan_out_only_to_subscribed_endpoints() {
    let app = TestApp::spawn().await;
    let (exact, pattern, other) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let (key, tenant) = app.tenant().await;
    app.endpoint(&key, &tenant, &exact.url, Some(&["order.created"]))
        .await;
    app.endpoint(&key, &tenant, &pattern.url, Some(&["order.*"]))
        .await;
    app.endpoint(&key, &tenant, &other.url, Some(&["invoice.paid"]))
        .await;

    let event = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": {} }),
        )
        .await;
    let deliveries = app.settled_deliveries(&key, &tenant, &event, 2).await;
    assert!(deliveries.iter().all(|d| d["status"] == "delivered"));
    assert_eq!(exact.wait_for(1).await.len(), 1);
    assert_eq!(pattern.wait_for(1).await.len(), 1);
    assert_eq!(
        app.count("deliveries").await,
        2,
        "no delivery row for the unsubscribed endpoint"
    );
    assert!(other.received().is_empty());
}

#[tokio::test]
async fn an_idempotency_key_gives_one_id_and_one_delivery() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;

    let body = json!({ "event_type": "order.created", "payload": { "n": 1 }, "idempotency_key": "order-1" });
    let first = app.event(&key, &tenant, body.clone()).await;
    let second = app.event(&key, &tenant, body).await;
    assert_eq!(first, second);
    // A later event is routed after both: once it is delivered, the duplicate was handled.
    let marker = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "marker", "payload": {} }),
        )
        .await;
    app.settled_deliveries(&key, &tenant, &marker, 1).await;
    app.settled_deliveries(&key, &tenant, &first, 1).await;

    assert_eq!(app.count("events").await, 2);
    assert_eq!(app.count("deliveries").await, 2);
    assert_eq!(app.count("attempts").await, 2);
    let got = receiver.wait_for(2).await;
    assert_eq!(got.len(), 2, "the repeated ingest caused no second POST");
}

#[tokio::test]
async fn a_batch_of_500_arrives_complete_without_duplicates() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;

    let events: Vec<_> = (0..500)
        .map(|i| json!({ "event_type": "item.created", "payload": { "seq": i } }))
        .collect();
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/events/batch"),
            &key,
            json!({ "events": events }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ids: HashSet<&str> = body["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 500);

    let got = receiver.wait_for(500).await;
    let seqs: HashSet<i64> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["seq"]
                .as_i64()
                .expect("seq")
        })
        .collect();
    assert_eq!(
        seqs,
        (0..500).collect::<HashSet<i64>>(),
        "every event arrived"
    );
    let webhook_ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(webhook_ids.len(), 500, "no duplicates");

    app.wait_for_delivered(500).await;
    let delivered = app
        .wait_for_json(
            &format!("/v1/tenants/{tenant}/deliveries?status=delivered&limit=250"),
            &key,
            "deliveries",
            |b| b["data"].as_array().is_some_and(|d| d.len() == 250),
        )
        .await;
    assert!(delivered["next"].is_string(), "a second page exists");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    let delivered_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
            .fetch_one(app.store.pool())
            .await
            .expect("count");
    assert_eq!((attempts, delivered_rows), (500, 500));
    assert_eq!(receiver.received().len(), 500);
}

#[tokio::test]
async fn a_failing_endpoint_leaves_a_failed_delivery_with_the_response_on_record() {
    // A long first retry delay keeps the delivery waiting in `failed` for the asserts.
    let app = TestApp::builder()
        .config(|c| c.retry.schedule = vec![std::time::Duration::from_secs(3600)])
        .start()
        .await;
    let receiver = Receiver::replying(StatusCode::INTERNAL_SERVER_ERROR, "boom").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;

    let event = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": [1, 2, 3] }),
        )
        .await;
    let deliveries = app.settled_deliveries(&key, &tenant, &event, 1).await;
    let d = &deliveries[0];
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_response_status"], 500);
    assert_eq!(d["last_error"], "HTTP 500");
    assert!(
        d["next_attempt_at"].is_string(),
        "a retry is scheduled: {d}"
    );

    let (_, attempts) = app
        .get(
            &format!(
                "/v1/tenants/{tenant}/deliveries/{}/attempts",
                d["id"].as_str().expect("id")
            ),
            &key,
        )
        .await;
    let a = &attempts["data"][0];
    assert_eq!(a["response_status"], 500);
    assert_eq!(a["response_body"], "boom");
    assert_eq!(a["response_headers"]["content-length"], "4", "{a}");
    assert_eq!(a["error"], "HTTP 500");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_recorded_as_a_connection_failure() {
    let app = TestApp::builder()
        .config(|c| c.retry.schedule = vec![std::time::Duration::from_secs(3600)])
        .start()
        .await;
    // Bind then drop a listener: nothing listens on that port any more.
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (key, tenant) = app.tenant().await;
    app.endpoint(
        &key,
        &tenant,
        &format!("http://127.0.0.1:{port}/hook"),
        None,
    )
    .await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": null }))
        .await;
    let d = &app.settled_deliveries(&key, &tenant, &event, 1).await[0];
    assert_eq!(d["status"], "failed");
    assert!(d["last_response_status"].is_null());
    assert!(
        d["last_error"]
            .as_str()
            .expect("error")
            .starts_with("connection failed"),
        "{d}"
    );
}

#[tokio::test]
async fn a_response_body_with_a_nul_byte_is_recorded_not_refused() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::replying(StatusCode::OK, "ok\0then more").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
        .await;
    let d = app.settled_deliveries(&key, &tenant, &event, 1).await[0].clone();
    assert_eq!(d["status"], "delivered");
    let (_, attempts) = app
        .get(
            &format!(
                "/v1/tenants/{tenant}/deliveries/{}/attempts",
                d["id"].as_str().expect("id")
            ),
            &key,
        )
        .await;
    assert_eq!(attempts["data"][0]["response_body"], "ok\u{FFFD}then more");
}
