//! Tenancy and access against real services: every route of the OpenAPI document
//! walked with a key of another tenant, a key without the route's permission and
//! a key that may; scope enforced while Postgres is away; expiry; failed
//! authentications cached and rate limited per address.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Receiver, Subscriber, TestApp, eventually};

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

impl TestApp {
    /// A key with these permissions (`None`: all) over these tenants (`None`: all).
    async fn scoped_key(&self, tenants: Option<&[&str]>, permissions: Option<Vec<&str>>) -> String {
        let mut body = json!({ "name": "scoped" });
        if let Some(t) = tenants {
            body["tenants"] = json!(t);
        }
        if let Some(p) = permissions {
            body["permissions"] = json!(p);
        }
        let (status, res) = self.post("/v1/api-keys", ADMIN_TOKEN, body).await;
        assert_eq!(status, StatusCode::CREATED, "{res}");
        res["key"].as_str().expect("key").to_string()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        match method {
            "GET" => self.get(path, token).await,
            "DELETE" => self.delete(path, token).await,
            "PATCH" => self.patch(path, token, body.clone()).await,
            "PUT" => self.put(path, token, body.clone()).await,
            _ => self.post(path, token, body.clone()).await,
        }
    }
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

    let Subscriber {
        key: full,
        tenant,
        endpoint,
    } = app.subscriber(&receiver.url).await;
    let (_, other) = app.tenant().await;
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
    let delivery = deliveries["data"][0]["id"]
        .as_str()
        .expect("a delivery")
        .to_string();
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

#[tokio::test]
async fn scope_and_permissions_hold_while_postgres_is_away() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let (_, tenant) = app.tenant().await;
    let (_, other) = app.tenant().await;
    let ingest = app
        .scoped_key(Some(&[&tenant]), Some(vec!["events:write"]))
        .await;
    let reader = app.scoped_key(Some(&[&tenant]), Some(vec!["read"])).await;
    app.cut_gateway_database().await;
    let event = json!({ "event_type": "order.paid", "payload": {} });
    let (status, res) = app
        .post(
            &format!("/v1/tenants/{tenant}/events"),
            &ingest,
            event.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{res}");
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{other}/events"),
            &ingest,
            event.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, res) = app
        .post(&format!("/v1/tenants/{tenant}/events"), &reader, event)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
}

#[tokio::test]
async fn keys_expire_and_bad_keys_are_refused_from_memory_then_rate_limited() {
    let app = TestApp::builder()
        .config(|c| c.quotas.auth_failures_per_minute = 3)
        .without_dispatcher()
        .start()
        .await;
    let (_, tenant) = app.tenant().await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let (status, key) = app
        .post(
            "/v1/api-keys",
            ADMIN_TOKEN,
            json!({ "expires_at": soon, "tenants": [tenant] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["tenants"], json!([tenant]));
    assert_eq!(key["permissions"].as_array().map(Vec::len), Some(7));
    let key = key["key"].as_str().expect("key").to_string();
    let path = format!("/v1/tenants/{tenant}");
    let res = eventually("the key to expire", || async {
        match app.get(&path, &key).await {
            (StatusCode::UNAUTHORIZED, res) => Ok(res),
            (status, res) => {
                assert_eq!(status, StatusCode::OK, "{res}");
                Err(status.to_string())
            }
        }
    })
    .await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expired"),
        "{res}"
    );
    // That was the first failure. A bad key found unknown once is refused from
    // memory: with the database away it still gets 401, not 503.
    let bad = "hr_not-a-key-at-all";
    let (status, _) = app.get(&path, bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.cut_gateway_database().await;
    let (status, res) = app.get(&path, bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{res}");
    // The fourth failure within the minute: refused, and so is everything from
    // this address until the wait is over, good credentials included.
    let res = app
        .http
        .get(app.url(&path))
        .bearer_auth(bad)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // Another unknown token from the same address waits too.
    let (status, res) = app.get(&path, "hr_another-guess").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{res}");
    assert_eq!(res["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn failures_from_a_shared_address_never_lock_out_known_credentials() {
    let app = TestApp::builder()
        .config(|c| c.quotas.auth_failures_per_minute = 60)
        .without_dispatcher()
        .start()
        .await;
    let (key, tenant) = app.tenant().await;
    let path = format!("/v1/tenants/{tenant}");
    // Someone else behind the same address (a NAT) spends its failures and more.
    let mut refused = 0;
    for n in 0..61 {
        let (status, _) = app.get(&path, &format!("hr_guess-{n}")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(refused, 1, "the 61st failure within the minute is refused");
    let (status, _) = app.get(&path, "hr_one-more-guess").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The good key, the admin token and ingest still work from there.
    let (status, res) = app.get(&path, &key).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (status, res) = app.get("/v1/admin/dead/stats", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (status, res) = app
        .post(
            &format!("/v1/tenants/{tenant}/events"),
            &key,
            json!({ "event_type": "x", "payload": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{res}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit_and_address() {
    let app = TestApp::builder()
        .config(|c| {
            c.quotas.auth_failures_per_minute = 2;
            c.http.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
        })
        .without_dispatcher()
        .start()
        .await;
    let bad_from = |client: &'static str, n: usize| {
        app.http
            .get(app.url("/v1/tenants"))
            .bearer_auth(format!("hr_not-a-key-{n}"))
            .header("x-forwarded-for", format!("{client}, 127.0.0.1"))
            .send()
    };
    // The first client spends its two failures and is refused; the second, behind
    // the same proxy, still has its own.
    for n in 0..2 {
        let res = bad_from("203.0.113.1", n).await.expect("send");
        assert_eq!(res.status().as_u16(), 401);
    }
    let res = bad_from("203.0.113.1", 2).await.expect("send");
    assert_eq!(res.status().as_u16(), 429);
    let res = bad_from("203.0.113.2", 3).await.expect("send");
    assert_eq!(res.status().as_u16(), 401, "another client, its own limit");

    // The audit log records the forwarded client, not the proxy.
    let res = app
        .http
        .post(app.url("/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({ "name": "Behind a proxy" }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 201);
    let (_, log) = app
        .get("/v1/admin/audit?action=tenant.created", ADMIN_TOKEN)
        .await;
    assert_eq!(log["data"][0]["address"], "198.51.100.7", "{log}");
}

#[tokio::test]
async fn cursors_name_only_rows_of_the_callers_own_tenant() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, mine) = app.tenant().await;
    let (_, theirs) = app.tenant().await;
    let (my_endpoint, _) = app.endpoint(&key, &mine, &receiver.url, None).await;
    let (their_endpoint, _) = app.endpoint(&key, &theirs, &receiver.url, None).await;
    let my_event = app
        .event(&key, &mine, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let their_event = app
        .event(&key, &theirs, json!({ "event_type": "x", "payload": 2 }))
        .await;
    let my_delivery = app.settled_deliveries(&key, &mine, &my_event, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let their_delivery = app.settled_deliveries(&key, &theirs, &their_event, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let scoped = app
        .post(
            "/v1/api-keys",
            ADMIN_TOKEN,
            json!({ "tenants": [mine], "permissions": ["read"] }),
        )
        .await
        .1;
    let scoped = scoped["key"].as_str().expect("key").to_string();
    for (list, own, other) in [
        ("events", &my_event, &their_event),
        ("endpoints", &my_endpoint, &their_endpoint),
        ("deliveries", &my_delivery, &their_delivery),
    ] {
        let path = format!("/v1/tenants/{mine}/{list}?after=");
        let (status, res) = app.get(&format!("{path}{own}"), &scoped).await;
        assert_eq!(status, StatusCode::OK, "{list}: {res}");
        // Another tenant's id answers exactly like an id that does not exist.
        let (status, res) = app.get(&format!("{path}{other}"), &scoped).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{list}: {res}");
        let (status, again) = app
            .get(&format!("{path}{}", uuid::Uuid::now_v7()), &scoped)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{list}: {again}");
        assert_eq!(res, again, "{list}");
    }
    let (status, res) = app.get(&format!("/v1/tenants?after={mine}"), &scoped).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (status, res) = app
        .get(&format!("/v1/tenants?after={theirs}"), &scoped)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
}
