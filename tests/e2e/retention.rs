//! Retention over daily partitions: a pass run "later" drops whole days past the
//! retention (and the deleted endpoints nothing refers to any more), clears bodies
//! past their shorter retention, and idempotency keys still hold across
//! acceptances. The migration that partitioned history is `partitioning`.

use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Receiver, Subscriber, TestApp};

async fn partitions(app: &TestApp, parent: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = $1::regclass ORDER BY 1",
    )
    .bind(parent)
    .fetch_all(app.store.pool())
    .await
    .expect("partitions")
}

fn day_name(parent: &str, days_from_now: i64) -> String {
    format!(
        "{parent}_p{}",
        (Utc::now() + Duration::days(days_from_now)).format("%Y%m%d")
    )
}

#[tokio::test]
async fn a_later_pass_drops_whole_days_and_deleted_endpoints_with_them() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    app.event(&key, &tenant, json!({ "event_type": "a.b", "payload": {} }))
        .await;
    receiver.wait_for(1).await;
    app.wait_for_delivered(1).await;
    for parent in ["events", "deliveries", "attempts"] {
        let names = partitions(&app, parent).await;
        assert!(names.contains(&day_name(parent, 0)), "{names:?}");
        assert!(
            !names.iter().any(|n| n.ends_with("_default")),
            "no default partition: {names:?}"
        );
    }
    let (status, _) = app
        .delete(&format!("/v1/tenants/{tenant}/endpoints/{endpoint}"), &key)
        .await;
    assert!(status.is_success(), "{status}");

    // The dispatcher's housekeeping made the days ahead at start.
    let ahead = day_name("events", hookrelay_core::store::DAYS_AHEAD);
    crate::helpers::eventually(format!("partition {ahead}"), || async {
        let made = partitions(&app, "events").await;
        if made.contains(&ahead) {
            Ok(())
        } else {
            Err(format!("{made:?}"))
        }
    })
    .await;

    // Today, nothing is old enough.
    let now = Utc::now();
    let pruned = app
        .store
        .apply_retention(now, Duration::days(30), None)
        .await
        .expect("retention")
        .expect("not locked");
    assert_eq!(pruned.days_dropped, 0);
    assert_eq!(app.count("events").await, 1);

    // An event accepted five days ago, on a day no partition holds (a backlog
    // older than every day kept): routing makes its day and stores it.
    let old = hookrelay_core::store::NewEvent {
        id: Uuid::now_v7(),
        tenant_id: tenant.parse().expect("tenant id"),
        event_type: "a.b".into(),
        payload: "{}".into(),
        idempotency_key: None,
        accepted_at: now - Duration::days(5),
        request_id: None,
        traceparent: None,
        channels: None,
    };
    assert!(
        !partitions(&app, "events")
            .await
            .contains(&day_name("events", -5))
    );
    app.store
        .route_events(&[old], std::time::Duration::from_secs(60))
        .await
        .expect("routed into a day made for it");
    assert!(
        partitions(&app, "events")
            .await
            .contains(&day_name("events", -5))
    );
    assert_eq!(app.count("events").await, 2);

    // Forty days on, with 30 days' retention: today's day and the old one are
    // detached and dropped whole, in every table, and the deleted endpoint
    // (nothing refers to it now) with them.
    let later = now + Duration::days(40);
    let pruned = app
        .store
        .apply_retention(later, Duration::days(30), None)
        .await
        .expect("retention")
        .expect("not locked");
    assert!(pruned.days_dropped >= 2, "{pruned:?}");
    assert!(pruned.days_created >= 4, "{pruned:?}");
    for parent in ["events", "deliveries", "attempts"] {
        let names = partitions(&app, parent).await;
        assert!(!names.contains(&day_name(parent, 0)), "{parent}: {names:?}");
        assert!(
            names.contains(&day_name(parent, 43)),
            "made ahead: {names:?}"
        );
    }
    assert_eq!(app.count("events").await, 0);
    assert_eq!(app.count("deliveries").await, 0);
    assert_eq!(app.count("attempts").await, 0);
    let endpoints: i64 = sqlx::query_scalar("SELECT count(*) FROM endpoints WHERE id = $1::uuid")
        .bind(&endpoint)
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert_eq!(endpoints, 0, "the deleted endpoint and its secret are gone");
}

#[tokio::test]
async fn bodies_go_first_when_their_retention_is_shorter() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::replying(axum::http::StatusCode::OK, "a body to forget").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    app.event(&key, &tenant, json!({ "event_type": "a.b", "payload": {} }))
        .await;
    app.wait_for_delivered(1).await;
    let body: Option<String> = sqlx::query_scalar("SELECT response_body FROM attempts")
        .fetch_one(app.store.pool())
        .await
        .expect("attempt");
    assert_eq!(body.as_deref(), Some("a body to forget"));

    let later = Utc::now() + Duration::days(3);
    let pruned = app
        .store
        .apply_retention(later, Duration::days(30), Some(Duration::days(1)))
        .await
        .expect("retention")
        .expect("not locked");
    assert!(pruned.bodies_cleared_days >= 1, "{pruned:?}");
    let (body, headers, status): (Option<String>, serde_json::Value, Option<i32>) =
        sqlx::query_as("SELECT response_body, request_headers, response_status FROM attempts")
            .fetch_one(app.store.pool())
            .await
            .expect("attempt");
    assert_eq!(
        (body, headers, status),
        (None, json!({}), Some(200)),
        "status stays"
    );
    let again = app
        .store
        .apply_retention(later, Duration::days(30), Some(Duration::days(1)))
        .await
        .expect("retention")
        .expect("not locked");
    assert_eq!(again.bodies_cleared_days, 0, "each day is cleared once");
}

#[tokio::test]
async fn idempotency_keys_hold_across_acceptances_and_partitions() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let tenant_id = Uuid::parse_str(&tenant).expect("uuid");

    // The same key sent twice (two acceptances, two times) makes one event.
    let keyed = json!({ "event_type": "a.b", "payload": {}, "idempotency_key": "order-1" });
    let first = app.event(&key, &tenant, keyed.clone()).await;
    let second = app.event(&key, &tenant, keyed).await;
    assert_eq!(first, second);

    // A key first used five days ago: its event sits in an older partition.
    let old_id = Uuid::new_v5(&tenant_id, b"order-0");
    app.store
        .ensure_partitions((Utc::now() - Duration::days(5)).date_naive())
        .await
        .expect("the old day");
    sqlx::query(
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at)
         VALUES ($1, $2, 'a.b', '{}', 'order-0', now() - interval '5 days')",
    )
    .bind(old_id)
    .bind(tenant_id)
    .execute(app.store.pool())
    .await
    .expect("an old event");
    let again = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "a.b", "payload": {}, "idempotency_key": "order-0" }),
        )
        .await;
    assert_eq!(again, old_id.to_string());

    // A later event routed after both: by then both repeats were routed (or not).
    app.event(&key, &tenant, json!({ "event_type": "a.b", "payload": {} }))
        .await;
    receiver.wait_for(2).await;
    app.wait_for_delivered(2).await;
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT e.id, (SELECT count(*) FROM deliveries d WHERE d.event_id = e.id)
           FROM events e WHERE e.idempotency_key IS NOT NULL ORDER BY e.created_at",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("events");
    assert_eq!(
        rows,
        vec![(old_id, 0), (Uuid::parse_str(&first).expect("uuid"), 1)],
        "one row per key; the repeat of the old key made no delivery"
    );
}

#[tokio::test]
async fn a_deliverys_attempts_come_in_pages() {
    let app = TestApp::builder()
        .config(|c| {
            c.retry.schedule = vec![std::time::Duration::from_millis(50)];
            c.retry.max_attempts = Some(4);
        })
        .start()
        .await;
    let receiver = Receiver::failing_first(2).await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    app.event(&key, &tenant, json!({ "event_type": "a.b", "payload": {} }))
        .await;
    receiver.wait_for(3).await;
    app.wait_for_delivered(1).await;
    let delivery: Uuid = sqlx::query_scalar("SELECT id FROM deliveries")
        .fetch_one(app.store.pool())
        .await
        .expect("delivery");
    let path = format!("/v1/tenants/{tenant}/deliveries/{delivery}/attempts");
    let (status, first) = app.get(&format!("{path}?limit=2"), &key).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{first}");
    let numbers = |page: &serde_json::Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|a| a["attempt"].as_i64().expect("n"))
            .collect()
    };
    assert_eq!(numbers(&first), [1, 2], "oldest first");
    let next = first["next"].as_str().expect("a next page");
    let (_, second) = app.get(&format!("{path}?limit=2&after={next}"), &key).await;
    assert_eq!(numbers(&second), [3]);
    assert!(second["next"].is_null(), "{second}");
    let (status, _) = app.get(&format!("{path}?limit=0"), &key).await;
    assert_eq!(status, axum::http::StatusCode::BAD_REQUEST);
}

fn old_event(tenant: &str, accepted_at: chrono::DateTime<Utc>) -> hookrelay_core::store::NewEvent {
    hookrelay_core::store::NewEvent {
        id: Uuid::now_v7(),
        tenant_id: tenant.parse().expect("tenant id"),
        event_type: "a.b".into(),
        payload: "{}".into(),
        idempotency_key: None,
        accepted_at,
        request_id: None,
        traceparent: None,
        channels: None,
    }
}

#[tokio::test]
async fn partition_upkeep_passes_open_writes_and_never_blocks_routing() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let (_, tenant) = app.tenant().await;
    let lease = std::time::Duration::from_secs(60);
    let now = Utc::now();

    // A write stays open on the events table (a routing transaction in flight):
    // making a day attaches beside it, where creating a partition of the parent
    // would wait for it (and everyone after would wait behind that).
    let mut open = app.store.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (id, tenant_id, event_type, payload, created_at)
         VALUES ($1, $2::uuid, 'a.b', '{}', now())",
    )
    .bind(Uuid::now_v7())
    .bind(&tenant)
    .execute(&mut *open)
    .await
    .expect("an open write");
    let day = (now + Duration::days(10)).date_naive();
    assert!(app.store.ensure_partitions(day).await.expect("attached"));
    open.commit().await.expect("commit");
    assert!(
        partitions(&app, "events")
            .await
            .contains(&day_name("events", 10))
    );

    // An old day, then routing without pause while upkeep detaches and drops it.
    app.store
        .route_events(&[old_event(&tenant, now - Duration::days(5))], lease)
        .await
        .expect("an old event");
    let stop = tokio_util::sync::CancellationToken::new();
    let router = {
        let (store, tenant, stop) = (app.store.clone(), tenant.clone(), stop.clone());
        tokio::spawn(async move {
            let mut routed = 0u32;
            while !stop.is_cancelled() {
                store
                    .route_events(&[old_event(&tenant, Utc::now())], lease)
                    .await
                    .expect("routing never fails for upkeep");
                routed += 1;
            }
            routed
        })
    };
    let pruned = app
        .store
        .apply_retention(now, Duration::days(2), None)
        .await
        .expect("retention")
        .expect("not locked");
    stop.cancel();
    let routed = router.await.expect("router");
    assert!(routed > 0);
    assert_eq!(pruned.days_dropped, 1, "{pruned:?}");
    for parent in ["events", "deliveries", "attempts"] {
        let gone = day_name(parent, -5);
        assert!(!partitions(&app, parent).await.contains(&gone), "{gone}");
        let left: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&gone)
            .fetch_one(app.store.pool())
            .await
            .expect("regclass");
        assert_eq!(left, None, "{gone} dropped after detaching");
    }
}
