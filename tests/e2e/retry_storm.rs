//! First attempts before retries: a share of the request slots
//! (`HOOKRELAY_FIRST_ATTEMPT_SHARE`) is kept for first attempts, so while 5,000
//! retries fall due at once towards 50 slow endpoints (each allowed its fair
//! share, together far more than the slots), a fresh event to another
//! endpoint still arrives within a second.

use std::time::{Duration, Instant};

use hookrelay_core::ids::new_id;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Receiver, TestApp};

#[tokio::test]
async fn a_fresh_event_arrives_within_a_second_while_5000_retries_drain() {
    let app = TestApp::builder()
        .config(|c| {
            c.delivery.max_in_flight = 8;
            c.delivery.first_attempt_share = 0.25;
        })
        .start()
        .await;
    let slow = Receiver::slow(Duration::from_millis(1500)).await;
    // 50 tenants (an outage hits everyone), an endpoint each: their fair shares
    // together are far more than the slots.
    let mut storm = Vec::new();
    let mut tenants = Vec::new();
    for _ in 0..50 {
        let (key, tenant) = app.tenant().await;
        let (id, _) = app.endpoint(&key, &tenant, &slow.url, None).await;
        let id = Uuid::parse_str(&id).expect("uuid");
        let tenant_id: Uuid = sqlx::query_scalar("SELECT tenant_id FROM endpoints WHERE id = $1")
            .bind(id)
            .fetch_one(app.store.pool())
            .await
            .expect("tenant");
        storm.push(id);
        tenants.push(tenant_id);
    }
    // 100 events of each tenant, each delivery failed once and due now.
    let events: Vec<Uuid> = (0..5000).map(|_| new_id()).collect();
    let deliveries: Vec<Uuid> = (0..5000).map(|_| new_id()).collect();
    let owners: Vec<Uuid> = (0..5000).map(|i| tenants[i % 50]).collect();
    let targets: Vec<Uuid> = (0..5000).map(|i| storm[i % 50]).collect();
    let due: i64 = sqlx::query_scalar(
        "WITH input AS (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[])
              AS t(event_id, delivery_id, tenant_id, endpoint_id)),
         ev AS (
            INSERT INTO events (id, tenant_id, event_type, payload, created_at)
            SELECT event_id, tenant_id, 'storm.retry', '{}', now() FROM input
            RETURNING id),
         d AS (
            INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, status, attempts, next_attempt_at)
            SELECT delivery_id, event_id, endpoint_id, tenant_id, 'failed', 1, now()
            FROM input WHERE event_id IN (SELECT id FROM ev)
            RETURNING 1)
         SELECT count(*) FROM d",
    )
    .bind(&events)
    .bind(&deliveries)
    .bind(&owners)
    .bind(&targets)
    .fetch_one(app.store.pool())
    .await
    .expect("a storm of retries");
    assert_eq!(due, 5000);
    // The storm is on: the slow endpoints hold the retries' slots.
    slow.wait_for_open(6).await;

    let fresh = Receiver::start().await;
    let (fresh_key, fresh_tenant) = app.tenant().await;
    app.endpoint(&fresh_key, &fresh_tenant, &fresh.url, None)
        .await;
    let sent = Instant::now();
    app.event(
        &fresh_key,
        &fresh_tenant,
        json!({ "event_type": "order.paid", "payload": {} }),
    )
    .await;
    let got = fresh.wait_for(1).await;
    let took = got[0].at - sent;
    // The figure the benchmarks quote (`--no-capture` shows it).
    eprintln!("retry storm: a fresh event arrived in {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "the fresh event took {took:?}"
    );
    let still_due: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE endpoint_id = ANY($1) AND status = 'failed'",
    )
    .bind(&storm)
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert!(
        still_due > 1000,
        "the storm was still draining ({still_due} left)"
    );
    assert!(
        slow.max_concurrency() <= 6,
        "retries held {} slots of 8",
        slow.max_concurrency()
    );
}
