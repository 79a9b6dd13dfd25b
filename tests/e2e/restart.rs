//! Nothing accepted is lost when the dispatcher is stopped and replaced.

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp};

fn seqs(receiver: &Receiver) -> HashSet<i64> {
    receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["seq"]
                .as_i64()
                .expect("seq")
        })
        .collect()
}

#[tokio::test]
async fn events_accepted_while_no_dispatcher_runs_are_delivered_once_one_starts() {
    let mut app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;

    for seq in 0..30 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "tick", "payload": { "seq": seq } }),
        )
        .await;
    }
    assert_eq!(
        app.count("events").await,
        0,
        "ingest does not write to Postgres"
    );
    app.start_dispatcher();
    receiver.wait_for(30).await;
    assert_eq!(seqs(&receiver), (0..30).collect());
}

#[tokio::test]
async fn replacing_the_dispatcher_mid_stream_loses_nothing() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;

    let batch = |from: i64| {
        let events: Vec<_> = (from..from + 200)
            .map(|seq| json!({ "event_type": "tick", "payload": { "seq": seq } }))
            .collect();
        json!({ "events": events })
    };
    let path = format!("/v1/tenants/{tenant}/events/batch");
    assert_eq!(app.post(&path, &key, batch(0)).await.0, 202);
    // Stop as soon as deliveries are flowing, with work still queued and in flight.
    receiver.wait_for(1).await;
    app.stop_dispatcher().await;
    assert_eq!(app.post(&path, &key, batch(200)).await.0, 202);
    app.start_dispatcher();

    receiver.wait_for(400).await;
    assert_eq!(
        seqs(&receiver),
        (0..400).collect(),
        "every accepted event arrived"
    );
    app.wait_for_delivered(400).await;
    assert_eq!(app.count("deliveries").await, 400);
}

/// Live lease holders that hold exactly two shards each.
const SHARE: &str = "SELECT count(*) FROM (
        SELECT holder FROM shard_leases
        WHERE holder IS NOT NULL AND expires_at > now()
        GROUP BY holder HAVING count(*) = 2) fair";

#[tokio::test]
async fn dispatchers_share_the_shards_and_one_takes_over_when_another_stops() {
    let mut app = TestApp::builder()
        .config(|c| {
            c.broker.shards = 4;
            c.dispatcher.shard_heartbeat = std::time::Duration::from_millis(100);
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    // Alone, the first dispatcher leases every shard.
    app.wait_for_query(
        "SELECT count(*) FROM shard_leases WHERE holder IS NOT NULL",
        None,
        4,
    )
    .await;

    app.start_another_dispatcher();
    app.wait_for_query(SHARE, None, 2).await;

    app.stop_dispatcher().await;
    app.wait_for_query(
        "SELECT count(*) FROM (SELECT holder FROM shard_leases
             WHERE holder IS NOT NULL AND expires_at > now()
             GROUP BY holder HAVING count(*) = 4) alone",
        None,
        1,
    )
    .await;
    assert_eq!(
        app.count("dispatchers").await,
        1,
        "the stopped one left the fleet"
    );
    // Every shard is consumed: an endpoint on each of them gets its event.
    let mut receivers = Vec::new();
    let mut covered = HashSet::new();
    while covered.len() < 4 {
        let r = Receiver::start().await;
        let (id, _) = app.endpoint(&key, &tenant, &r.url, None).await;
        let id = uuid::Uuid::parse_str(&id).expect("uuid");
        if covered.insert(hookrelay_core::ids::shard_of(id, 4)) {
            receivers.push(r);
        } else {
            app.delete(&format!("/v1/tenants/{tenant}/endpoints/{id}"), &key)
                .await;
        }
    }
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "tick", "payload": { "seq": 0 } }),
    )
    .await;
    for r in &receivers {
        r.wait_for(1).await;
    }
    receiver.wait_for(1).await;
}
