//! Retention over daily partitions: a pass run "later" drops whole days past the
//! retention (and the deleted endpoints nothing refers to any more), clears bodies
//! past their shorter retention, and idempotency keys still hold across
//! acceptances; the migration that partitioned history keeps every row it found.

use chrono::{Duration, Utc};
use serde_json::json;
use sqlx::Connection as _;
use uuid::Uuid;

use crate::helpers::{Receiver, TestApp};

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
    let (key, tenant, endpoint) = app.subscriber(&receiver.url).await;
    app.event(&key, &tenant, json!({ "event_type": "a.b", "payload": {} }))
        .await;
    receiver.wait_for(1).await;
    app.wait_for_delivered(1).await;
    for parent in ["events", "deliveries", "attempts"] {
        let names = partitions(&app, parent).await;
        assert!(names.contains(&day_name(parent, 0)), "{names:?}");
        assert!(names.contains(&format!("{parent}_default")), "{names:?}");
    }
    let (status, _) = app
        .delete(&format!("/v1/tenants/{tenant}/endpoints/{endpoint}"), &key)
        .await;
    assert!(status.is_success(), "{status}");

    // The dispatcher's housekeeping made the days ahead at start.
    let ahead = day_name("events", hookrelay_core::store::DAYS_AHEAD);
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    while !partitions(&app, "events").await.contains(&ahead) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no partition {ahead}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

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

    // A row no day holds (accepted five days ago, before any partition): it
    // waits in the default partition.
    sqlx::query(
        "INSERT INTO events (id, tenant_id, event_type, payload, created_at)
         VALUES ($1, $2::uuid, 'a.b', '{}', now() - interval '5 days')",
    )
    .bind(Uuid::now_v7())
    .bind(&tenant)
    .execute(app.store.pool())
    .await
    .expect("an old event");
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM events_default")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert_eq!(in_default, 1);

    // Forty days on, with 30 days' retention: today's day is dropped whole, in
    // every table (the default partition's old rows go by row), and the deleted
    // endpoint (nothing refers to it now) with it.
    let later = now + Duration::days(40);
    let pruned = app
        .store
        .apply_retention(later, Duration::days(30), None)
        .await
        .expect("retention")
        .expect("not locked");
    assert!(pruned.days_dropped >= 1, "{pruned:?}");
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
    let (key, tenant, _) = app.subscriber(&receiver.url).await;
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
    let (key, tenant, _) = app.subscriber(&receiver.url).await;
    let tenant_id = Uuid::parse_str(&tenant).expect("uuid");

    // The same key sent twice (two acceptances, two times) makes one event.
    let keyed = json!({ "event_type": "a.b", "payload": {}, "idempotency_key": "order-1" });
    let first = app.event(&key, &tenant, keyed.clone()).await;
    let second = app.event(&key, &tenant, keyed).await;
    assert_eq!(first, second);

    // A key first used five days ago: its event sits in an older partition.
    let old_id = Uuid::new_v5(&tenant_id, b"order-0");
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
async fn the_partitioning_migration_keeps_every_row_of_the_previous_schema() {
    let admin_url = crate::helpers::admin_database_url();
    let name = format!("hookrelay_migration_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create");
    let url = format!("{}/{name}", admin_url.rsplit_once('/').expect("path").0);
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");

    // The schema as the previous release left it, with ten days of history in it.
    let full = sqlx::migrate!("./migrations");
    let mut previous = sqlx::migrate!("./migrations");
    previous.migrations = full
        .migrations
        .iter()
        .filter(|m| m.version < 20261201000021)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    previous.run(&pool).await.expect("previous migrations");
    for sql in [
        // A UUIDv7 of a moment, as hookrelay makes them.
        "CREATE FUNCTION test_v7(ts timestamptz) RETURNS uuid LANGUAGE sql AS $$
           SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
                   || substr(md5(random()::text), 1, 19))::uuid $$",
        "INSERT INTO tenants (id, name) VALUES ('00000000-0000-7000-8000-000000000001', 'Acme')",
        "INSERT INTO endpoints (id, tenant_id, url, secret_ciphertext)
         VALUES ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'https://x.example', '\\x00')",
        "CREATE TABLE before AS
           SELECT test_v7(now() - make_interval(mins => n * 48)) AS event_id, n,
                  now() - make_interval(mins => n * 48) AS at
             FROM generate_series(1, 300) n",
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at)
         SELECT event_id, '00000000-0000-7000-8000-000000000001', 'a.b', '{\"n\":' || n || '}',
                CASE WHEN n % 3 = 0 THEN 'k' || n END, at FROM before",
        "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, status, created_at)
         SELECT test_v7(at), event_id, '00000000-0000-7000-8000-000000000002',
                '00000000-0000-7000-8000-000000000001', 'delivered', at FROM before",
        "INSERT INTO attempts (id, delivery_id, attempt, request_headers, response_status, duration_ms, created_at)
         SELECT test_v7(d.created_at), d.id, 1, '{}', 200, 5, d.created_at FROM deliveries d",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    let snapshot = "SELECT (SELECT md5(string_agg(id::text || payload || coalesce(idempotency_key, '') || created_at::text, ',' ORDER BY id)) FROM events)
                     || (SELECT md5(string_agg(id::text || event_id::text || status, ',' ORDER BY id)) FROM deliveries)
                     || (SELECT md5(string_agg(id::text || delivery_id::text || response_status, ',' ORDER BY id)) FROM attempts)";
    let before: String = sqlx::query_scalar(snapshot)
        .fetch_one(&pool)
        .await
        .expect("snapshot");

    full.run(&pool).await.expect("the partitioning migration");
    let after: String = sqlx::query_scalar(snapshot)
        .fetch_one(&pool)
        .await
        .expect("snapshot");
    assert_eq!(
        before, after,
        "every row of events, deliveries and attempts, unchanged"
    );
    let days: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")
            .fetch_one(&pool)
            .await
            .expect("partitions");
    assert!(
        days >= 11 + 2,
        "a partition per day of history and ahead, and default: {days}"
    );
    for table in ["events_default", "deliveries_default", "attempts_default"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .expect("count");
        assert_eq!(n, 0, "{table}: every row found its day");
    }
    let partitioned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid IN
           ('events'::regclass, 'deliveries'::regclass, 'attempts'::regclass)",
    )
    .fetch_one(&pool)
    .await
    .expect("partitioned");
    assert_eq!(partitioned, 3);
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("drop");
}

#[tokio::test]
async fn a_deliverys_attempts_come_in_pages() {
    let app = TestApp::spawn_with(
        |c| {
            c.retry.schedule = vec![std::time::Duration::from_millis(50)];
            c.retry.max_attempts = Some(4);
        },
        true,
    )
    .await;
    let receiver = Receiver::failing_first(2).await;
    let (key, tenant, _) = app.subscriber(&receiver.url).await;
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
