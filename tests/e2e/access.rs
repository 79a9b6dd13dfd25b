//! Tenancy and access against real services: every route of the OpenAPI document
//! walked with a key of another tenant, a key without the route's permission and
//! a key that may. Credentials over time (outages, expiry, failures) are
//! `credentials`.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Receiver, Subscriber, TestApp};

/// What each producer route needs. `Operator`: operators only (admin token or a
/// named operator's token). `Global`: a key reaching every tenant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Operator,
    Permission(&'static str),
    Global(&'static str),
}

/// Every route of the contract with what it needs and a body it accepts.
fn routes() -> Vec<(&'static str, &'static str, Needs, Value)> {
    use Needs::*;
    let event = json!({ "event_type": "order.paid", "payload": { "n": 1 } });
    vec![
        ("GET", "/v1/tenants", Permission("read"), Value::Null),
        (
            "POST",
            "/v1/tenants",
            Global("tenants:write"),
            json!({ "name": "New" }),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}",
            Permission("read"),
            Value::Null,
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/audit",
            Permission("read"),
            Value::Null,
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/console-links",
            Permission("console-links"),
            json!({}),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/deliveries",
            Permission("read"),
            Value::Null,
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/deliveries/{delivery}",
            Permission("read"),
            Value::Null,
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/deliveries/{delivery}/attempts",
            Permission("read"),
            Value::Null,
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/deliveries/{delivery}/replay",
            Permission("replay"),
            json!({}),
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/deliveries/{held}/cancel",
            Permission("replay"),
            json!({}),
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/events/{event}/cancel",
            Permission("replay"),
            json!({}),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/endpoints/{endpoint}/backlog",
            Permission("read"),
            Value::Null,
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/endpoints/{endpoint}/backlog/cancel",
            Permission("replay"),
            json!({}),
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/endpoints/{endpoint}/filter/test",
            Permission("read"),
            json!({ "event_id": "{event}" }),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/endpoints",
            Permission("read"),
            Value::Null,
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/endpoints",
            Permission("endpoints:write"),
            json!({ "url": "http://127.0.0.1:9/other" }),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/endpoints/{endpoint}",
            Permission("read"),
            Value::Null,
        ),
        (
            "PATCH",
            "/v1/tenants/{tenant}/endpoints/{endpoint}",
            Permission("endpoints:write"),
            json!({ "description": "changed" }),
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/endpoints/{endpoint}/recover",
            Permission("replay"),
            json!({ "since": "2026-01-01T00:00:00Z" }),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/endpoints/{endpoint}/secret",
            Permission("secrets:read"),
            Value::Null,
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/endpoints/{endpoint}/secret/rotate",
            Permission("endpoints:write"),
            json!({}),
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/endpoints/{endpoint}/test",
            Permission("endpoints:write"),
            json!({}),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/events",
            Permission("read"),
            Value::Null,
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/events",
            Permission("events:write"),
            event.clone(),
        ),
        (
            "POST",
            "/v1/tenants/{tenant}/events/batch",
            Permission("events:write"),
            json!({ "events": [event] }),
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/events/{event}",
            Permission("read"),
            Value::Null,
        ),
        (
            "GET",
            "/v1/tenants/{tenant}/events/{event}/deliveries",
            Permission("read"),
            Value::Null,
        ),
        ("GET", "/v1/jobs/{job}", Permission("read"), Value::Null),
        (
            "GET",
            "/v1/tenant-deletions/{deletion}",
            Permission("tenants:write"),
            Value::Null,
        ),
        // Last: it deletes the endpoint the routes above use.
        (
            "DELETE",
            "/v1/tenants/{tenant}/endpoints/{endpoint}",
            Permission("endpoints:write"),
            Value::Null,
        ),
        // Very last of the producer routes: it deletes the tenant.
        (
            "DELETE",
            "/v1/tenants/{tenant}",
            Permission("tenants:write"),
            Value::Null,
        ),
        ("GET", "/v1/api-keys", Operator, Value::Null),
        ("POST", "/v1/api-keys", Operator, json!({})),
        ("DELETE", "/v1/api-keys/{key}", Operator, Value::Null),
        ("GET", "/v1/admin/audit", Operator, Value::Null),
        ("GET", "/v1/admin/console-sessions", Operator, Value::Null),
        (
            "DELETE",
            "/v1/admin/console-sessions/{session}",
            Operator,
            Value::Null,
        ),
        ("GET", "/v1/admin/dead", Operator, Value::Null),
        ("GET", "/v1/admin/dead/stats", Operator, Value::Null),
        (
            "POST",
            "/v1/admin/dead/replay",
            Operator,
            json!({ "all": true }),
        ),
        (
            "POST",
            "/v1/admin/dead/purge",
            Operator,
            json!({ "all": true, "confirm": true }),
        ),
        (
            "GET",
            "/v1/admin/deliveries/{delivery}",
            Operator,
            Value::Null,
        ),
        ("GET", "/v1/admin/broker-dead", Operator, Value::Null),
        (
            "GET",
            "/v1/admin/broker-dead/{message}",
            Operator,
            Value::Null,
        ),
        (
            "POST",
            "/v1/admin/broker-dead/requeue",
            Operator,
            json!({ "ids": ["none"] }),
        ),
        (
            "POST",
            "/v1/admin/broker-dead/purge",
            Operator,
            json!({ "ids": ["none"], "confirm": true }),
        ),
        (
            "PUT",
            "/v1/admin/tenants/{tenant}/limits",
            Operator,
            json!({ "ingest_rate": 1000 }),
        ),
    ]
}

/// The contract's routes that need credentials, as "METHOD /path" with the
/// parameter names the spec gives.
fn contract_routes() -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(&hookrelay_gateway::openapi_json()).expect("json");
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/v1/") {
            continue;
        }
        for method in ops.as_object().expect("ops").keys() {
            out.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    out
}

/// A path of ours with the spec's parameter names (`{id}` for the last one).
fn spec_path(path: &str) -> String {
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    let last = parts
        .iter()
        .rposition(|p| p.starts_with('{') && p != "{tenant}");
    if let Some(i) = last {
        parts[i] = "{id}".into();
    }
    parts.join("/")
}

const ALL: [&str; 7] = [
    "events:write",
    "read",
    "endpoints:write",
    "secrets:read",
    "console-links",
    "replay",
    "tenants:write",
];

#[tokio::test]
async fn every_route_refuses_other_tenants_and_keys_without_its_permission() {
    let app = TestApp::builder()
        .config(|c| c.retry.max_attempts = Some(1))
        .start()
        .await;
    let receiver = Receiver::start().await;
    // The table covers the contract exactly: a new route must say what it needs.
    let ours: BTreeSet<String> = routes()
        .iter()
        .map(|(m, p, _, _)| format!("{m} {}", spec_path(p)))
        .collect();
    assert_eq!(
        ours,
        contract_routes(),
        "the route table and openapi.json differ"
    );

    let Subscriber { key: full, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let (_, other) = app.tenant().await;
    // A paused endpoint holds its delivery of the event: one to cancel.
    let (status, paused) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            &full,
            json!({ "url": receiver.url, "paused": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paused}");
    let paused = paused["id"].as_str().expect("id").to_string();
    let event = app
        .event(
            &full,
            &tenant,
            json!({ "event_type": "order.paid", "payload": {} }),
        )
        .await;
    receiver.wait_for(1).await;
    let (_, deliveries) = app
        .get(
            &format!("/v1/tenants/{tenant}/events/{event}/deliveries"),
            &full,
        )
        .await;
    let of = |ep: &str| {
        deliveries["data"]
            .as_array()
            .expect("deliveries")
            .iter()
            .find(|d| d["endpoint_id"] == ep)
            .and_then(|d| d["id"].as_str())
            .expect("a delivery")
            .to_string()
    };
    let delivery = of(&endpoint);
    let held = of(&paused);
    let (status, job) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}/recover"),
            &full,
            json!({ "since": "2026-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = job["id"].as_str().expect("job").to_string();
    let (_, spare) = app.post("/v1/api-keys", ADMIN_TOKEN, json!({})).await;
    let spare = spare["id"].as_str().expect("key id").to_string();

    // A deletion to look at: of a tenant the scoped keys below reach too.
    let (_, doomed) = app
        .post("/v1/tenants", &full, json!({ "name": "Doomed" }))
        .await;
    let doomed = doomed["id"].as_str().expect("id").to_string();
    // For each route: this tenant's key with every permission but the one the
    // route needs, and one with only that one (made while `doomed` exists).
    let mut keys = Vec::new();
    for (_, _, needs, _) in routes() {
        keys.push(match needs {
            Needs::Operator => None,
            Needs::Permission(p) | Needs::Global(p) => {
                let others: Vec<&str> = ALL.iter().copied().filter(|q| *q != p).collect();
                let lacking = app
                    .scoped_key(Some(&[&tenant, &doomed]), Some(others))
                    .await;
                let scope: Option<&[&str]> = match needs {
                    Needs::Global(_) => None,
                    _ => Some(&[tenant.as_str(), doomed.as_str()]),
                };
                Some((lacking, app.scoped_key(scope, Some(vec![p])).await))
            }
        });
    }
    let (status, deletion) = app.delete(&format!("/v1/tenants/{doomed}"), &full).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deletion}");
    let deletion = deletion["id"].as_str().expect("deletion").to_string();

    let elsewhere = app.scoped_key(Some(&[&other]), None).await;
    let fill = |p: &str| {
        p.replace("{tenant}", &tenant)
            .replace("{delivery}", &delivery)
            .replace("{held}", &held)
            .replace("{endpoint}", &endpoint)
            .replace("{event}", &event)
            .replace("{job}", &job)
            .replace("{deletion}", &deletion)
            .replace("{key}", &spare)
            .replace("{message}", "none")
            .replace("{session}", "01890000-0000-7000-8000-000000000000")
    };
    for ((method, path, needs, body), keys) in routes().into_iter().zip(keys) {
        let url = fill(path);
        let body: Value = serde_json::from_str(&fill(&body.to_string())).expect("JSON");
        let what = format!("{method} {path}");
        match needs {
            Needs::Operator => {
                let (status, res) = app.call(method, &url, &full, &body).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{what} with a producer key: {res}"
                );
                let (status, _) = app.call(method, &url, &elsewhere, &body).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                let (status, res) = app.call(method, &url, ADMIN_TOKEN, &body).await;
                assert!(
                    status.is_success() || status == StatusCode::NOT_FOUND,
                    "{what} as the operator: {status} {res}"
                );
            }
            Needs::Permission(p) | Needs::Global(p) => {
                // Another tenant's key, with every permission: the tenant is not found.
                let (status, res) = app.call(method, &url, &elsewhere, &body).await;
                if path.contains("{tenant}")
                    || path.contains("{job}")
                    || path.contains("{deletion}")
                {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{what} with another tenant's key: {res}"
                    );
                } else if needs == Needs::Global(p) {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{what} with a scoped key: {res}"
                    );
                } else {
                    assert_eq!(status, StatusCode::OK, "{what}: {res}");
                    let ids: Vec<&str> = res["data"]
                        .as_array()
                        .expect("list")
                        .iter()
                        .filter_map(|t| t["id"].as_str())
                        .collect();
                    assert_eq!(
                        ids,
                        vec![other.as_str()],
                        "a scoped key lists only its tenants"
                    );
                }
                let (lacking, only) = keys.expect("keys for a producer route");
                let (status, res) = app.call(method, &url, &lacking, &body).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} without {p}: {res}");
                assert_eq!(res["error"]["code"], "forbidden", "{what}");
                // And with only that permission, it works.
                let (status, res) = app.call(method, &url, &only, &body).await;
                assert!(status.is_success(), "{what} with {p}: {status} {res}");
            }
        }
    }
}
