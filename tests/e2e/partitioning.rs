//! The migration that partitioned history keeps every row of the schema before it.

use chrono::{Duration, Utc};
use sqlx::Connection as _;
use uuid::Uuid;

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
    let snapshot = "SELECT (SELECT md5(string_agg(id::text || payload || coalesce(idempotency_key, '') || created_at::text, ',' ORDER BY id)) FROM events WHERE event_type <> 'stray')
                     || (SELECT md5(string_agg(id::text || event_id::text || status, ',' ORDER BY id)) FROM deliveries)
                     || (SELECT md5(string_agg(id::text || delivery_id::text || response_status, ',' ORDER BY id)) FROM attempts)";
    let before: String = sqlx::query_scalar(snapshot)
        .fetch_one(&pool)
        .await
        .expect("snapshot");

    // Partitioned, with a row no day holds (it waits in the default partition)
    // when the default partitions go.
    let mut middle = sqlx::migrate!("./migrations");
    middle.migrations = full
        .migrations
        .iter()
        .filter(|m| m.version < 20261201000025)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    middle.run(&pool).await.expect("partitioned, with defaults");
    sqlx::query(
        "INSERT INTO events (id, tenant_id, event_type, payload, created_at)
         VALUES ('00000000-0000-7000-8000-0000000000ff', '00000000-0000-7000-8000-000000000001',
                 'stray', '{}', now() - interval '60 days')",
    )
    .execute(&pool)
    .await
    .expect("a stray row");
    full.run(&pool).await.expect("the partitioning migrations");
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
        "a partition per day of history and ahead: {days}"
    );
    for table in ["events_default", "deliveries_default", "attempts_default"] {
        let left: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(&pool)
            .await
            .expect("regclass");
        assert_eq!(left, None, "{table} is gone");
    }
    let stray: String = sqlx::query_scalar(
        "SELECT tableoid::regclass::text FROM events WHERE event_type = 'stray'",
    )
    .fetch_one(&pool)
    .await
    .expect("the stray row kept");
    let day = (Utc::now() - Duration::days(60))
        .format("events_p%Y%m%d")
        .to_string();
    assert_eq!(stray, day, "moved to a day of its own");
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
