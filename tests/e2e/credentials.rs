//! Credentials against real services: scope enforced while Postgres is away;
//! expiry; failed authentications cached and rate limited per address, never
//! locking out known credentials, per client behind a trusted proxy; cursors
//! scoped to their tenant.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Receiver, TestApp, eventually};

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
    let scoped = app.scoped_key(Some(&[&mine]), Some(vec!["read"])).await;
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
