//! Ingest lanes: while two tenants send, the one far above its share has its events
//! published to the bulk lane, the other's stay in the priority lane, and the
//! router drains both.

use hookrelay_core::queue::IngestLane;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp, broker_channel};
use crate::limits::post_batch;

/// Messages ready in `queue`.
async fn ready(channel: &lapin::Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .expect("queue exists")
        .message_count()
}

#[tokio::test]
async fn a_tenant_far_above_its_share_takes_the_bulk_lane_and_both_lanes_are_delivered() {
    // No dispatcher yet, so the messages stay where the gateway put them.
    let mut app = TestApp::builder()
        .config(|c| c.quotas.priority_rate = 10)
        .without_dispatcher()
        .start()
        .await;
    let (quiet_rx, loud_rx) = (Receiver::start().await, Receiver::start().await);
    let Subscriber { key: quiet_key, tenant: quiet, endpoint: _ } =
        app.subscriber(&quiet_rx.url).await;
    let Subscriber { key: loud_key, tenant: loud, endpoint: _ } =
        app.subscriber(&loud_rx.url).await;
    let event = json!({ "event_type": "x", "payload": {} });

    app.event(&quiet_key, &quiet, event.clone()).await;
    for _ in 0..3 {
        post_batch(&app, &loud_key, &loud, 100).await;
    }
    app.event(&quiet_key, &quiet, event).await;

    let topology = app.config.topology();
    let (_connection, channel) = broker_channel().await;
    let priority = topology.ingest_lane(IngestLane::Priority);
    let bulk = topology.ingest_lane(IngestLane::Bulk);
    assert_eq!(ready(&channel, &bulk).await, 3, "the loud tenant's batches");
    assert_eq!(
        ready(&channel, &priority).await,
        2,
        "the quiet tenant's events"
    );
    // Counted once confirmed, before the requests were answered.
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "hookrelay_events_bulk_lane_total 300"),
        "{metrics}"
    );

    app.start_dispatcher();
    assert_eq!(loud_rx.wait_for(300).await.len(), 300);
    assert_eq!(quiet_rx.wait_for(2).await.len(), 2);
    app.wait_for_delivered(302).await;
    assert_eq!(ready(&channel, &bulk).await, 0);
}

#[tokio::test]
async fn a_lone_tenant_stays_in_the_priority_lane() {
    let mut app = TestApp::builder()
        .config(|c| c.quotas.priority_rate = 10)
        .without_dispatcher()
        .start()
        .await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    for _ in 0..3 {
        post_batch(&app, &key, &tenant, 100).await;
    }
    let topology = app.config.topology();
    let (_connection, channel) = broker_channel().await;
    assert_eq!(
        ready(&channel, &topology.ingest_lane(IngestLane::Priority)).await,
        3
    );
    assert_eq!(
        ready(&channel, &topology.ingest_lane(IngestLane::Bulk)).await,
        0
    );
    app.start_dispatcher();
    app.wait_for_delivered(300).await;
}

#[tokio::test]
async fn a_bad_message_in_the_bulk_lane_is_dead_lettered_with_its_source() {
    let app = TestApp::builder().start().await;
    let bulk = app.config.topology().ingest_lane(IngestLane::Bulk);
    app.publisher()
        .publish_all(&[(bulk.clone(), b"{not json".to_vec())])
        .await
        .expect("published");
    app.wait_for_broker_dead(1).await;
    let letters = app
        .broker_dead_letters()
        .await
        .list(10)
        .await
        .expect("list");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].source.as_deref(), Some(bulk.as_str()));
    assert!(
        letters[0].reason.contains("unparseable"),
        "{}",
        letters[0].reason
    );
}
