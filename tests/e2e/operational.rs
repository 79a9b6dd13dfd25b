//! Operational events against the real services: an endpoint failing raises each
//! failing level once (not once per failed attempt), its breaker opening and
//! closing, each dead delivery, the dead letters growing once per window and the
//! recovery; pause, resume and a 410 raise theirs; every one arrives signed, with
//! the fields `openapi.json` documents, at the tenant's subscribed endpoint and at
//! the operations tenant's; and none is ever raised about an endpoint that
//! receives them, so a failing one does not feed on itself.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Receiver, TestApp, eventually, verifies};

/// The documented `data` fields of each operational event type.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc: Value =
        serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json");
    let schemas = &doc["components"]["schemas"];
    let mut out = BTreeMap::new();
    for (name, hook) in doc["webhooks"].as_object().expect("webhooks") {
        let payload = &hook["post"]["requestBody"]["content"]["application/json"]["schema"];
        let Some(data) = payload["properties"]["data"]["$ref"].as_str() else {
            continue;
        };
        let schema = &schemas[data.rsplit('/').next().expect("name")];
        let fields = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        out.insert(name.clone(), fields);
    }
    out
}

/// The operational events a receiver got, each checked: signed with `secret`,
/// its type in the `webhook` body matching, its data holding the documented fields.
fn events(receiver: &Receiver, secret: &str) -> Vec<Value> {
    let documented = documented();
    receiver
        .received()
        .iter()
        .map(|r| {
            assert!(verifies(secret, r), "signed");
            let body: Value = serde_json::from_slice(&r.body).expect("json");
            let kind = body["type"].as_str().expect("type").to_string();
            let fields: BTreeSet<String> = body["data"]
                .as_object()
                .expect("data")
                .keys()
                .cloned()
                .collect();
            assert_eq!(Some(&fields), documented.get(&kind), "{kind}: {body}");
            assert!(body["occurred_at"].is_string(), "{body}");
            body
        })
        .collect()
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

async fn operational_endpoint(
    app: &TestApp,
    key: &str,
    tenant: &str,
    url: &str,
) -> (String, String) {
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            key,
            json!({ "url": url, "event_types": ["hookrelay.*"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().expect("id").into(),
        body["secret"].as_str().expect("secret").into(),
    )
}

#[tokio::test]
async fn a_failing_endpoint_raises_each_crossing_once_then_its_recovery() {
    let app = TestApp::builder()
        .config(|c| {
            c.retry.max_attempts = Some(1);
            c.breaker.consecutive_failures = 10;
            c.breaker.min_requests = 1_000;
            c.breaker.open_for = Duration::from_secs(1);
            c.delivery.dead_letters_growing = 5;
        })
        .start()
        .await;
    let failing = Receiver::failing_first(10).await;
    let listener = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let (endpoint, _) = app
        .endpoint(&key, &tenant, &failing.url, Some(&["order.*"]))
        .await;
    let (_, secret) = operational_endpoint(&app, &key, &tenant, &listener.url).await;
    // An endpoint for every event type does not receive operational ones.
    let everything = Receiver::start().await;
    app.endpoint(&key, &tenant, &everything.url, None).await;

    for n in 0..10 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": { "n": n } }),
        )
        .await;
    }
    // 10 dead + 4 levels + the breaker opening + the dead letters growing.
    listener.wait_for(16).await;
    // The next event waits for the probe, which the receiver now answers: closed, recovered.
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": { "n": 10 } }),
    )
    .await;
    listener.wait_for(18).await;
    let got = events(&listener, &secret);
    assert_eq!(count(&got, "hookrelay.delivery.dead"), 10, "{got:?}");
    let levels: Vec<i64> = got
        .iter()
        .filter(|e| e["type"] == "hookrelay.endpoint.failing")
        .map(|e| e["data"]["level"].as_i64().expect("level"))
        .collect();
    assert_eq!(
        BTreeSet::from_iter(levels.iter().copied()),
        BTreeSet::from([50, 70, 90, 100])
    );
    assert_eq!(levels.len(), 4, "each level once: {levels:?}");
    for kind in [
        "hookrelay.circuit.opened",
        "hookrelay.circuit.closed",
        "hookrelay.endpoint.recovered",
        "hookrelay.dead_letters.growing",
    ] {
        assert_eq!(count(&got, kind), 1, "{kind}: {got:?}");
    }
    assert!(
        got.iter()
            .filter(|e| e["type"] != "hookrelay.dead_letters.growing")
            .all(|e| e["data"]["endpoint_id"] == endpoint.as_str())
    );
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    let metrics = metrics.text().await.expect("text");
    let dead_line = "hookrelay_operational_events_total{type=\"hookrelay.delivery.dead\"} 10";
    assert!(metrics.lines().any(|l| l == dead_line), "{metrics}");
    let growing = got
        .iter()
        .find(|e| e["type"] == "hookrelay.dead_letters.growing")
        .expect("growing");
    // The count when it crossed 5 (a batch of deaths may cross it at once).
    let dead = growing["data"]["dead"].as_i64().expect("dead");
    assert!((5..=10).contains(&dead), "{growing}");
    assert_eq!(growing["data"]["tenant_id"], tenant.as_str());
    // Nothing more arrives: the 12 deliveries of the failing endpoint are all on record.
    app.wait_for_delivered(1 + 18 + 11).await;
    assert_eq!(listener.received().len(), 18);
    assert!(
        everything.received().iter().all(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("json");
            body.get("type").is_none()
        }),
        "no operational event for an endpoint of every type"
    );
}

#[tokio::test]
async fn an_endpoint_that_receives_them_raises_none_about_itself() {
    let app = TestApp::builder()
        .config(|c| {
            c.retry.max_attempts = Some(1);
            c.delivery.dead_letters_growing = 0;
        })
        .start()
        .await;
    let failing = Receiver::replying(StatusCode::INTERNAL_SERVER_ERROR, "no").await;
    // The operational endpoint fails too: its deliveries die, and raise nothing.
    let listener = Receiver::replying(StatusCode::INTERNAL_SERVER_ERROR, "no").await;
    let (key, tenant) = app.tenant().await;
    app.endpoint(&key, &tenant, &failing.url, Some(&["order.*"]))
        .await;
    let (listener_id, _) = operational_endpoint(&app, &key, &tenant, &listener.url).await;
    let operational =
        "SELECT count(*) FROM events WHERE event_type LIKE 'hookrelay.%' AND tenant_id = $1";
    for n in 1..=2i64 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": {} }),
        )
        .await;
        listener.wait_for(n as usize).await;
        let listener_uuid: Uuid = listener_id.parse().expect("uuid");
        eventually("the listener's delivery to die", || async {
            let dead: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'dead'",
            )
            .bind(listener_uuid)
            .fetch_one(app.store.pool())
            .await
            .map_err(|e| e.to_string())?;
            if dead == n {
                Ok(())
            } else {
                Err(format!("{dead} dead"))
            }
        })
        .await;
        app.wait_for_count(operational, &tenant, n).await;
    }
    // Two, both about the failing endpoint's dead deliveries: none about the listener's.
    let about: Vec<String> = sqlx::query_scalar(
        "SELECT e.payload::jsonb #>> '{data,endpoint_id}' FROM events e WHERE event_type LIKE 'hookrelay.%'",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("events");
    assert_eq!(about.len(), 2);
    assert!(about.iter().all(|e| *e != listener_id), "{about:?}");
    let (streak, level): (i32, i16) =
        sqlx::query_as("SELECT failure_streak, failing_level FROM endpoints WHERE id = $1")
            .bind(listener_id.parse::<Uuid>().expect("uuid"))
            .fetch_one(app.store.pool())
            .await
            .expect("row");
    assert_eq!(
        (streak, level),
        (2, 0),
        "its failures count, its levels are never announced"
    );
}

#[tokio::test]
async fn pause_resume_and_gone_reach_the_tenant_and_the_operations_tenant() {
    let ops = Uuid::new_v4();
    let app = TestApp::builder()
        .config(move |c| c.delivery.operations_tenant = Some(ops))
        .start()
        .await;
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'operations')")
        .bind(ops)
        .execute(app.store.pool())
        .await
        .expect("operations tenant");
    let gone = Receiver::replying(StatusCode::GONE, "gone").await;
    let (tenant_listener, ops_listener) = (Receiver::start().await, Receiver::start().await);
    let (key, tenant) = app.tenant().await;
    let (endpoint, _) = app
        .endpoint(&key, &tenant, &gone.url, Some(&["order.*"]))
        .await;
    let (_, tenant_secret) = operational_endpoint(&app, &key, &tenant, &tenant_listener.url).await;
    let (_, ops_secret) = operational_endpoint(
        &app,
        crate::helpers::ADMIN_TOKEN,
        &ops.to_string(),
        &ops_listener.url,
    )
    .await;
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    for paused in [true, false] {
        let (status, body) = app.patch(&path, &key, json!({ "paused": paused })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": {} }),
    )
    .await;
    tenant_listener.wait_for(4).await;
    ops_listener.wait_for(4).await;
    for (listener, secret) in [
        (&tenant_listener, &tenant_secret),
        (&ops_listener, &ops_secret),
    ] {
        let got = events(listener, secret);
        let kinds: BTreeSet<&str> = got
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            kinds,
            BTreeSet::from([
                "hookrelay.endpoint.paused",
                "hookrelay.endpoint.resumed",
                "hookrelay.endpoint.disabled",
                "hookrelay.delivery.dead",
            ]),
        );
        assert!(got.iter().all(|e| e["data"]["tenant_id"] == tenant.as_str()
            && e["data"]["endpoint_id"] == endpoint.as_str()));
        let paused = got
            .iter()
            .find(|e| e["type"] == "hookrelay.endpoint.paused")
            .expect("paused");
        assert_eq!(paused["data"]["reason"], Value::Null, "paused by hand");
    }
    // Producers cannot send hookrelay's own types.
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/events"),
            &key,
            json!({ "event_type": "hookrelay.endpoint.failing", "payload": {} }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
