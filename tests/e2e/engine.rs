//! The engine under hostile or unlucky conditions: bad messages are isolated,
//! outages hold work instead of dead-lettering it, a purged shard queue loses
//! nothing. Lost and extra messages are `messages`.

use std::time::Duration;

use hookrelay_core::queue::{DeliveryMessage, Pick};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Receiver, Subscriber, TestApp, broker_channel};

pub(crate) fn ingest_body(tenant: Uuid, n: usize) -> Vec<u8> {
    let events: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "id": Uuid::now_v7(),
                "event_type": "order.created",
                "payload": { "n": i },
                "accepted_at": chrono::Utc::now(),
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "tenant_id": tenant, "events": events })).expect("json")
}

#[tokio::test]
async fn a_message_for_a_missing_tenant_is_dead_lettered_and_the_rest_of_its_batch_is_routed() {
    // No dispatcher yet: the messages queue up and reach the router as one batch.
    let mut app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let tenant: Uuid = tenant.parse().expect("uuid");
    let ingest = app.config.topology().ingest_queue();
    let publisher = app.publisher();
    let ghost = Uuid::new_v4();
    let messages = vec![
        (ingest.clone(), ingest_body(tenant, 2)),
        (ingest.clone(), ingest_body(ghost, 1)),
        (ingest.clone(), ingest_body(tenant, 3)),
        (ingest.clone(), b"{not json".to_vec()),
        (ingest.clone(), ingest_body(tenant, 1)),
    ];
    publisher.publish_all(&messages).await.expect("published");
    app.start_dispatcher();

    receiver.wait_for(6).await;
    app.wait_for_broker_dead(2).await;
    // Posted after the bad message: routed all the same.
    app.event(
        &key,
        &tenant.to_string(),
        json!({ "event_type": "x", "payload": {} }),
    )
    .await;
    receiver.wait_for(7).await;

    let dead = app.broker_dead_letters().await;
    let letters = dead.list(10).await.expect("list");
    assert_eq!(letters.len(), 2, "listing leaves them in the queue");
    let ghostly = letters
        .iter()
        .find(|l| l.body_text().contains(&ghost.to_string()))
        .expect("the missing tenant's message, body intact");
    assert!(
        ghostly.reason.contains("refused its events"),
        "{}",
        ghostly.reason
    );
    assert!(ghostly.reason.contains("foreign key"), "{}", ghostly.reason);
    assert_eq!(ghostly.source.as_deref(), Some(ingest.as_str()));
    assert!(letters.iter().any(|l| l.reason.contains("unparseable")));
    assert_eq!(dead.count().await.expect("count"), 2);
    assert_eq!(
        dead.find(&ghostly.id)
            .await
            .expect("find")
            .expect("found")
            .body,
        ghostly.body
    );

    // Requeue checks again: the tenant still does not exist, so it stays.
    let report = dead
        .requeue(&Pick::Ids(vec![ghostly.id.clone()]), &app.store, &publisher)
        .await
        .expect("requeue");
    assert!(report.requeued.is_empty());
    assert!(
        report.refused[0].reason.contains("does not exist"),
        "{report:?}"
    );
    assert_eq!(dead.count().await.expect("count"), 2);

    let purged = dead.purge(&Pick::All).await.expect("purge");
    assert_eq!(purged.len(), 2);
    assert_eq!(dead.count().await.expect("count"), 0);
    assert_eq!(receiver.received().len(), 7, "nothing sent twice");
}

#[tokio::test]
async fn a_requeued_dead_letter_is_routed_once_its_cause_is_gone() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key: _key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let tenant: Uuid = tenant.parse().expect("uuid");
    let publisher = app.publisher();
    let topology = app.config.topology();
    // A good message that was dead-lettered (say, by a delivery limit): requeue sends it on.
    publisher
        .dead_letter(&topology.ingest_queue(), &ingest_body(tenant, 2), "test")
        .await
        .expect("dead-lettered");
    let dead = app.broker_dead_letters().await;
    let report = dead
        .requeue(&Pick::All, &app.store, &publisher)
        .await
        .expect("requeue");
    assert_eq!((report.requeued.len(), report.refused.len()), (1, 0));
    receiver.wait_for(2).await;
    assert_eq!(dead.count().await.expect("count"), 0);
}

#[tokio::test]
async fn an_unparseable_delivery_message_is_dead_lettered_and_the_shard_goes_on() {
    let app = TestApp::builder()
        .config(|c| c.broker.shards = 1)
        .start()
        .await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let shard = app.config.topology().delivery_queue(0);
    app.publisher()
        .publish(shard.clone(), b"[1,2".to_vec())
        .await
        .expect("published");
    app.wait_for_broker_dead(1).await;
    app.event(&key, &tenant, json!({ "event_type": "x", "payload": {} }))
        .await;
    receiver.wait_for(1).await;
    let letters = app.broker_dead_letters().await.list(5).await.expect("list");
    assert_eq!(letters[0].source.as_deref(), Some(shard.as_str()));
    assert!(letters[0].reason.contains("unparseable delivery message"));
    assert_eq!(letters[0].body, b"[1,2");
}

/// A policy that caps this test's shard queues at no messages, so they refuse
/// publishes once they hold one; cleared on drop, even after a panic.
struct ShardQueueCap(String);

impl ShardQueueCap {
    fn set(prefix: &str) -> Self {
        let name = format!("outage-{prefix}");
        let status = std::process::Command::new("rabbitmqctl")
            .args([
                "-q",
                "set_policy",
                &name,
                &format!("^{prefix}\\.delivery\\."),
                r#"{"max-length":0,"overflow":"reject-publish"}"#,
                "--apply-to",
                "queues",
                "--priority",
                "100",
            ])
            .status();
        assert!(status.expect("rabbitmqctl runs").success(), "set_policy");
        Self(name)
    }
}

impl Drop for ShardQueueCap {
    fn drop(&mut self) {
        let status = std::process::Command::new("rabbitmqctl")
            .args(["-q", "clear_policy", &self.0])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("could not clear policy {}", self.0);
        }
    }
}

#[tokio::test]
async fn a_fifteen_second_shard_queue_outage_dead_letters_and_loses_nothing() {
    let mut app = TestApp::builder()
        .config(|c| c.broker.queue_delivery_limit = 20)
        .without_dispatcher()
        .start()
        .await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    // Nobody consumes the shard queues (another holder leases them) and they take no
    // messages: every publish of the router is refused for as long as this lasts.
    hold_shards(&app).await;
    let cap = ShardQueueCap::set(&app.config.broker.queue_prefix);
    app.start_dispatcher();
    for n in 0..20 {
        app.event(&key, &tenant, json!({ "event_type": "x", "payload": n }))
            .await;
    }
    // The fault itself lasts a set time: long enough for a requeue loop to pass the
    // delivery limit many times over.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let dead = app.broker_dead_letters().await;
    assert_eq!(
        dead.count().await.expect("count"),
        0,
        "nothing dead-lettered"
    );
    drop(cap);
    release_shards(&app).await;
    receiver.wait_for(20).await;
    app.wait_for_delivered(20).await;
    assert_eq!(
        dead.count().await.expect("count"),
        0,
        "nothing dead-lettered"
    );
}

/// Leases every shard to a holder that is not running, so no sender consumes.
async fn hold_shards(app: &TestApp) {
    sqlx::query(
        "INSERT INTO shard_leases (shard, holder, expires_at)
         SELECT generate_series(0, $1 - 1), gen_random_uuid(), now() + interval '1 hour'",
    )
    .bind(i32::from(app.config.broker.shards))
    .execute(app.store.pool())
    .await
    .expect("leases");
}

async fn release_shards(app: &TestApp) {
    sqlx::query("UPDATE shard_leases SET expires_at = now() - interval '1 second'")
        .execute(app.store.pool())
        .await
        .expect("leases end");
}

#[tokio::test]
async fn a_purged_shard_queue_delays_its_deliveries_but_loses_none() {
    let mut app = TestApp::builder()
        .config(|c| c.delivery.unsent_after = Duration::from_secs(2))
        .without_dispatcher()
        .start()
        .await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    hold_shards(&app).await;
    app.start_dispatcher();
    for n in 0..5 {
        app.event(&key, &tenant, json!({ "event_type": "x", "payload": n }))
            .await;
    }
    app.wait_for_query("SELECT count(*) FROM deliveries", None, 5)
        .await;
    // The router published them; the messages are lost before any sender sees them.
    let (connection, channel) = broker_channel().await;
    let topology = app.config.topology();
    // Purge for a while: whatever the router publishes meanwhile is lost.
    let mut purged = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        for shard in 0..topology.shards() {
            purged += channel
                .queue_purge(
                    topology.delivery_queue(shard).as_str().into(),
                    lapin::options::QueuePurgeOptions::default(),
                )
                .await
                .expect("purge");
        }
    }
    assert!(purged >= 1, "some delivery message was purged");
    release_shards(&app).await;
    receiver.wait_for(5).await;
    app.wait_for_delivered(5).await;
    let _ = connection.close(200, "bye".into()).await;
}

#[tokio::test]
async fn queues_declared_by_an_older_version_are_kept() {
    // The ingest queue as a version without `x-delivery-limit` declared it.
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let (connection, channel) = broker_channel().await;
    let mut args = lapin::types::FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            format!("{prefix}.ingest").as_str().into(),
            lapin::options::QueueDeclareOptions { durable: true, ..Default::default() },
            args,
        )
        .await
        .expect("old-style queue");
    let app = TestApp::builder()
        .config(|c| c.broker.queue_prefix = prefix.clone())
        .start()
        .await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    app.event(&key, &tenant, json!({ "event_type": "x", "payload": {} }))
        .await;
    receiver.wait_for(1).await;
    let _ = connection.close(200, "bye".into()).await;
}

#[tokio::test]
async fn a_stale_message_for_a_delivery_waiting_to_retry_sends_nothing() {
    let app = TestApp::builder()
        .config(|c| {
            c.broker.shards = 1;
            c.retry.schedule = vec![Duration::from_secs(3600)];
            c.retry.max_attempts = Some(2);
        })
        .start()
        .await;
    let receiver = Receiver::failing_first(1).await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;
    receiver.wait_for(1).await;
    app.wait_for_count(
        "SELECT count(*) FROM deliveries WHERE event_id = $1 AND status = 'failed' AND attempts = 1",
        &event,
        1,
    )
    .await;
    let delivery: Uuid = sqlx::query_scalar("SELECT id FROM deliveries WHERE event_id = $1")
        .bind(event.parse::<Uuid>().expect("uuid"))
        .fetch_one(app.store.pool())
        .await
        .expect("delivery");
    // The message of the first attempt comes back (say, redelivered after a crash).
    let body = serde_json::to_vec(&DeliveryMessage {
        deliveries: vec![delivery],
        attempts: Some(vec![0]),
        bulk: false,
    })
    .expect("json");
    app.publisher()
        .publish(app.config.topology().delivery_queue(0), body)
        .await
        .expect("published");
    // A later event through the same shard: once it arrives, the stale one was handled.
    app.event(&key, &tenant, json!({ "event_type": "x", "payload": 2 }))
        .await;
    let got = receiver.wait_for(2).await;
    assert_ne!(got[1].header("webhook-id"), delivery.to_string());
    assert_eq!(
        receiver.started(),
        2,
        "the retry an hour away was not sent early"
    );
}
