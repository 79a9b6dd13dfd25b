//! The single-event path's shortcuts keep their promises: deliveries of shards
//! this dispatcher consumes are handed to its sender without a shard message,
//! and claiming a delivery is a HOT update (no index touched).

use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp, eventually};
use crate::metrics::{metrics_when, sample};

/// Delivery messages the dispatcher has had confirmed so far.
async fn delivery_messages(app: &TestApp) -> f64 {
    let text = metrics_when(app, |_| true).await;
    sample(
        &text,
        "hookrelay_broker_publish_confirm_seconds_count",
        &[("role", "dispatcher-publisher")],
    )
    .unwrap_or(0.0)
}

/// Posts the `n`th `order.created` event.
async fn order(app: &TestApp, key: &str, tenant: &str, n: usize) {
    app.event(
        key,
        tenant,
        json!({ "event_type": "order.created", "payload": { "n": n } }),
    )
    .await;
}

#[tokio::test]
async fn deliveries_of_shards_consumed_here_skip_the_shard_queue() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    // Until its shards' consumers run, routed deliveries take the queue: wait for
    // one that does not.
    let mut sent = 0;
    eventually("a delivery handed over in memory", || {
        sent += 1;
        let n = sent;
        let (receiver, app, key, tenant) = (&receiver, &app, &key, &tenant);
        async move {
            let before = delivery_messages(app).await;
            order(app, key, tenant, n).await;
            receiver.wait_for(n).await;
            // Recorded as delivered only after its request: a delivery message's
            // confirm, had there been one, was counted well before.
            app.wait_for_delivered(n as i64).await;
            let after = delivery_messages(app).await;
            if after == before {
                Ok(())
            } else {
                Err(format!("{after} delivery messages"))
            }
        }
    })
    .await;
    let before = delivery_messages(&app).await;
    for n in 0..20 {
        order(&app, &key, &tenant, sent + 1 + n).await;
    }
    let got = receiver.wait_for(sent + 20).await;
    assert_eq!(got.len(), sent + 20, "each event delivered once");
    app.wait_for_delivered(sent as i64 + 20).await;
    assert_eq!(
        delivery_messages(&app).await,
        before,
        "no shard message published"
    );
}

#[tokio::test]
async fn claiming_a_delivery_leaves_the_indexes_alone() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    for n in 0..10 {
        order(&app, &key, &tenant, n).await;
    }
    receiver.wait_for(10).await;
    app.wait_for_delivered(10).await;
    // Each delivery was updated twice: claimed (HOT) and finished (not: its status
    // and due time are indexed). The statistics reach the view within a second or so.
    let (updates, hot): (i64, i64) = eventually("the deliveries' update statistics", || async {
        let row: (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(n_tup_upd), 0)::int8, coalesce(sum(n_tup_hot_upd), 0)::int8
             FROM pg_stat_user_tables WHERE relname LIKE 'deliveries_p%'",
        )
        .fetch_one(app.store.pool())
        .await
        .map_err(|e| e.to_string())?;
        if row.0 >= 20 {
            Ok(row)
        } else {
            Err(format!("{row:?}"))
        }
    })
    .await;
    assert!(hot >= 10, "{hot} of {updates} updates were HOT");
}
