//! Deleting a tenant against real services: refused at once through the API, its
//! undelivered deliveries dead-lettered with a reason, its rows removed by the
//! dispatchers' job, recorded in the audit log; other tenants untouched.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Receiver, Subscriber, TestApp};

#[tokio::test]
async fn a_deleted_tenant_is_gone_at_once_for_the_api_and_then_from_the_database() {
    let app = TestApp::spawn().await;
    let ok = Receiver::start().await;
    let failing = Receiver::failing_first(100).await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&ok.url).await;
    app.endpoint(&key, &tenant, &failing.url, None).await;
    let Subscriber { key: other_key, tenant: other, endpoint: _ } = app.subscriber(&ok.url).await;
    for i in 0..3 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "order.paid", "payload": { "i": i } }),
        )
        .await;
    }
    app.event(
        &other_key,
        &other,
        json!({ "event_type": "order.paid", "payload": {} }),
    )
    .await;
    ok.wait_for(4).await;
    failing.wait_for(3).await;
    // Recorded as delivered: only the failing endpoint's deliveries are still owed.
    app.wait_for_delivered(4).await;
    app.wait_for_query(
        "SELECT count(*) FROM deliveries WHERE status = 'failed'",
        None,
        3,
    )
    .await;

    let (status, deletion) = app.delete(&format!("/v1/tenants/{tenant}"), &key).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deletion}");
    // The failing endpoint's deliveries were dead-lettered with the reason, in
    // the same transaction.
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE tenant_id = $1::uuid AND status = 'dead' AND last_error = 'tenant deleted'",
    )
    .bind(&tenant)
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert_eq!(
        dead, 3,
        "the failing endpoint's deliveries are dead-lettered"
    );
    let (status, _) = app.get(&format!("/v1/tenants/{tenant}"), &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{tenant}/events"),
            &key,
            json!({ "event_type": "x", "payload": {} }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no more ingest for it");

    let path = format!(
        "/v1/tenant-deletions/{}",
        deletion["id"].as_str().expect("id")
    );
    app.wait_for_json(&path, &key, "the deletion to finish", |d| {
        d["status"] == "done"
    })
    .await;
    let (_, done) = app.get(&path, &key).await;
    assert!(done["removed"].as_i64().is_some_and(|n| n >= 9), "{done}");
    for table in ["events", "deliveries", "endpoints", "tenants"] {
        let col = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {col} = $1::uuid"
        )))
        .bind(&tenant)
        .fetch_one(app.store.pool())
        .await
        .expect("count");
        assert_eq!(n, 0, "{table} still holds the tenant's rows");
    }
    assert_eq!(
        app.count("attempts").await,
        1,
        "only the other tenant's attempt is left"
    );
    // An event of it still queued for the router is dead-lettered, not retried.
    let ingest = app.config.topology().ingest_queue();
    let gone: uuid::Uuid = tenant.parse().expect("uuid");
    app.publisher()
        .publish_all(&[(ingest, crate::engine::ingest_body(gone, 1))])
        .await
        .expect("published");
    app.wait_for_broker_dead(1).await;
    let (status, _) = app.get(&format!("/v1/tenants/{other}"), &other_key).await;
    assert_eq!(status, StatusCode::OK);
    let (_, log) = app
        .get("/v1/admin/audit?action=tenant.deleted", ADMIN_TOKEN)
        .await;
    assert_eq!(log["data"][0]["tenant_id"], tenant.as_str(), "{log}");
    assert_eq!(log["data"][0]["details"]["dead_lettered"], 3, "{log}");
}
