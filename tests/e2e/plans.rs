//! The sender's hot statements are planned for their own values every time: a plan
//! cached for any value cannot prune the day partitions, and keeps the table sizes
//! it was made with (an empty partition's, for a connection opened at midnight).

use std::time::Duration;

use chrono::Utc;
use hookrelay_core::Store;
use hookrelay_core::ids::new_id;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::store::{AttemptRecord, NewEvent};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Receiver, Subscriber, TestApp};

const ROUNDS: usize = 12;
/// As large as the merged claims and the batches of attempt records are under load:
/// with a plan cache free to choose, a generic plan (costed for ten ids) wins here.
const BATCH: usize = 60;

#[tokio::test]
async fn claims_and_attempt_records_are_planned_for_the_ids_they_name() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::start().await;
    let Subscriber { key: _key, tenant, endpoint: _endpoint } = app.subscriber(&receiver.url).await;
    let tenant: Uuid = tenant.parse().expect("tenant id");
    // One connection: every statement below is prepared in the session read at the end.
    let store = Store::connect_lazy(app.config.database.url.expose(), 1).expect("pool");
    for round in 0..ROUNDS {
        let events: Vec<NewEvent> = (0..BATCH)
            .map(|_| NewEvent {
                id: new_id(),
                tenant_id: tenant,
                event_type: "plan.check".into(),
                payload: "{}".into(),
                idempotency_key: None,
                accepted_at: Utc::now(),
                request_id: None,
                traceparent: None,
                channels: None,
            })
            .collect();
        let routed = store
            .route_events(&events, Duration::from_secs(60))
            .await
            .expect("route");
        let ids: Vec<Uuid> = routed.iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), BATCH, "round {round}");
        let claimed = store
            .claim_jobs(&ids, None, Duration::from_secs(30))
            .await
            .expect("claim");
        assert_eq!(claimed.jobs.len(), BATCH, "round {round}");
        let records: Vec<AttemptRecord> = ids
            .iter()
            .map(|&delivery_id| AttemptRecord {
                delivery_id,
                status: DeliveryStatus::Delivered,
                next_attempt_at: None,
                request_headers: json!({}),
                response_status: Some(200),
                response_headers: None,
                response_body: None,
                duration_ms: 5,
                error: None,
                at: Utc::now(),
                out_of_band: false,
            })
            .collect();
        store.record_attempts(&records).await.expect("record");
    }

    let delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE status = 'delivered' AND attempts = 1",
    )
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(delivered, (ROUNDS * BATCH) as i64);
    let plans: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
          WHERE statement LIKE 'WITH claimed AS%' OR statement LIKE 'WITH input AS%'",
    )
    .fetch_all(store.pool())
    .await
    .expect("prepared statements");
    assert_eq!(
        plans.len(),
        2,
        "the claim and the attempt record: {plans:?}"
    );
    for (statement, generic, custom) in plans {
        let head = statement.lines().next().unwrap_or_default();
        assert_eq!(generic, 0, "{head}: {generic} generic plans");
        assert_eq!(custom, ROUNDS as i64, "{head}: {custom} custom plans");
    }
}
