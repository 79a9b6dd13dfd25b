//! Messages lost or repeated: lost messages do not strand deliveries, a lowered
//! shard count moves what orphaned queues hold, extra messages do not cause extra
//! requests, and no endpoint takes every request slot.

use std::time::Duration;

use axum::http::StatusCode;
use hookrelay_core::ids::shard_of;
use hookrelay_core::queue::DeliveryMessage;
use hookrelay_core::store::NewEvent;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Receiver, Subscriber, TestApp};

/// Routes one event as the router does (events and delivery rows, due after
/// `unsent_after`) without publishing its deliveries: as if their message were lost.
pub async fn route_unpublished(
    app: &TestApp,
    tenant: &str,
    unsent_after: Duration,
) -> Vec<hookrelay_core::store::NewDelivery> {
    let event = NewEvent {
        id: Uuid::now_v7(),
        tenant_id: tenant.parse().expect("uuid"),
        event_type: "x".into(),
        payload: "{}".into(),
        idempotency_key: None,
        accepted_at: chrono::Utc::now(),
        request_id: None,
        traceparent: None,
        channels: None,
    };
    app.store
        .route_events(&[event], unsent_after)
        .await
        .expect("routed")
}

#[tokio::test]
async fn a_delivery_whose_message_never_arrives_is_sent_after_the_unsent_lease() {
    let app = TestApp::builder()
        .config(|c| c.delivery.unsent_after = Duration::from_secs(2))
        .start()
        .await;
    let receiver = Receiver::start().await;
    let Subscriber { key: _key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    // Its message is lost (purged, dead-lettered, ...).
    let routed = route_unpublished(&app, &tenant, app.config.delivery.unsent_after).await;
    assert_eq!(routed.len(), 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-id"), routed[0].id.to_string());
    app.wait_for_delivered(1).await;
}

#[tokio::test]
async fn lowering_the_shard_count_moves_deliveries_out_of_the_orphaned_queues() {
    // Four shards' worth of queued deliveries, then a dispatcher configured for two.
    let mut app = TestApp::builder()
        .config(|c| {
            c.broker.shards = 4;
            c.delivery.unsent_after = Duration::from_secs(3600);
        })
        .without_dispatcher()
        .start()
        .await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let mut endpoints = Vec::new();
    // Four endpoints at least, and until one hashes to shard 2 or 3.
    while endpoints.len() < 4 || !endpoints.iter().any(|e| shard_of(*e, 4) >= 2) {
        let (id, _) = app.endpoint(&key, &tenant, &receiver.url, None).await;
        endpoints.push(id.parse::<Uuid>().expect("uuid"));
    }
    let old = app.config.topology();
    let routed = route_unpublished(&app, &tenant, app.config.delivery.unsent_after).await;
    assert_eq!(routed.len(), endpoints.len());
    let publisher = app.publisher();
    publisher
        .publish_all(&hookrelay_core::queue::delivery_messages(&old, &routed))
        .await
        .expect("published to four shards");
    // The old dispatchers' leases on all four shards, long expired.
    sqlx::query(
        "INSERT INTO shard_leases (shard) SELECT generate_series(0, 3) ON CONFLICT DO NOTHING",
    )
    .execute(app.store.pool())
    .await
    .expect("leases");
    publisher.close().await;

    app.config.broker.shards = 2;
    app.start_dispatcher();
    receiver.wait_for(endpoints.len()).await;
    app.wait_for_delivered(endpoints.len() as i64).await;
    // The orphaned queues are deleted once empty.
    app.wait_for_query(
        "SELECT count(*) FROM shard_leases WHERE shard >= 2",
        None,
        0,
    )
    .await;
    let dead = app.broker_dead_letters().await;
    assert_eq!(dead.count().await.expect("count"), 0);
}

#[tokio::test]
async fn a_delivery_named_by_many_messages_is_posted_once() {
    let app = TestApp::builder()
        .config(|c| c.broker.shards = 1)
        .start()
        .await;
    let receiver = Receiver::slow(Duration::from_secs(3)).await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": {} }))
        .await;
    receiver.wait_for_open(1).await;
    let delivery: Uuid = sqlx::query_scalar("SELECT id FROM deliveries WHERE event_id = $1")
        .bind(event.parse::<Uuid>().expect("uuid"))
        .fetch_one(app.store.pool())
        .await
        .expect("delivery");
    // Sixteen more messages naming the delivery while its request is open.
    let shard = app.config.topology().delivery_queue(0);
    // As a redelivered ingest message or a lapsed scheduler lease would name it.
    let body = serde_json::to_vec(&DeliveryMessage {
        deliveries: vec![delivery],
        attempts: Some(vec![0]),
        bulk: false,
    })
    .expect("json");
    let extra: Vec<_> = (0..16).map(|_| (shard.clone(), body.clone())).collect();
    app.publisher()
        .publish_all(&extra)
        .await
        .expect("published");
    receiver.wait_for(1).await;
    app.wait_for_delivered(1).await;
    // A later event through the same shard: by the time it arrives, every extra
    // message before it has been handled.
    app.event(&key, &tenant, json!({ "event_type": "x", "payload": 2 }))
        .await;
    receiver.wait_for(2).await;
    assert_eq!(
        receiver.started(),
        2,
        "one POST per delivery, however many messages"
    );
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts WHERE delivery_id = $1")
        .bind(delivery)
        .fetch_one(app.store.pool())
        .await
        .expect("attempts");
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn a_slow_endpoint_cannot_take_every_request_slot() {
    let app = TestApp::builder()
        .config(|c| c.delivery.max_in_flight = 16)
        .start()
        .await;
    let slow = Receiver::slow(Duration::from_secs(6)).await;
    let fast = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            &key,
            json!({ "url": slow.url, "event_types": ["slow.*"], "max_in_flight": 100 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.endpoint(&key, &tenant, &fast.url, Some(&["fast.*"]))
        .await;
    for n in 0..40 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "slow.x", "payload": n }),
        )
        .await;
    }
    // Its fair share (a quarter of 16) is open and the rest wait or are parked.
    slow.wait_for_open(4).await;
    let sent = std::time::Instant::now();
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "fast.x", "payload": {} }),
    )
    .await;
    fast.wait_for(1).await;
    let waited = sent.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "the other endpoint's event waited {waited:?}"
    );
    assert!(
        slow.max_concurrency() <= 4,
        "held {} slots",
        slow.max_concurrency()
    );
}
