//! The audit log against real services: who did what, from where, in which
//! request; never a secret; pages; a tenant's own view; append-only; and quotas
//! (ingest rate, endpoints) refused before anything is stored or published.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Receiver, TestApp};

impl TestApp {
    /// Every audit entry, newest first, read page by page (`limit` per page).
    async fn audit(&self, path: &str, token: &str, limit: usize) -> Vec<Value> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut url = format!("{path}{sep}limit={limit}");
            if let Some(n) = &next {
                url += &format!("&after={n}");
            }
            let (status, page) = self.get(&url, token).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let rows = page["data"].as_array().expect("data").clone();
            assert!(rows.len() <= limit);
            all.extend(rows);
            match page["next"].as_str() {
                Some(n) => next = Some(n.to_string()),
                None => return all,
            }
        }
    }
}

#[tokio::test]
async fn every_change_is_recorded_with_who_where_and_which_request_and_no_secret() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (status, key) = app
        .post(
            "/v1/api-keys",
            ADMIN_TOKEN,
            json!({ "name": "billing service" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (key_id, token) = (
        key["id"].as_str().expect("id").to_string(),
        key["key"].as_str().expect("key").to_string(),
    );
    let (_, tenant) = app
        .post("/v1/tenants", &token, json!({ "name": "Acme" }))
        .await;
    let tenant = tenant["id"].as_str().expect("id").to_string();
    let (endpoint, secret) = app.endpoint(&token, &tenant, &receiver.url, None).await;
    let base = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let res = app
        .http
        .patch(app.url(&base))
        .bearer_auth(&token)
        .header("x-request-id", "audit-test-patch")
        .json(&json!({ "description": "billing", "disabled": false }))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status().as_u16(), 200);
    let (status, _) = app.get(&format!("{base}/secret"), &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, rotated) = app
        .post(&format!("{base}/secret/rotate"), &token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["secret"].as_str().expect("secret").to_string();
    app.event(
        &token,
        &tenant,
        json!({ "event_type": "order.paid", "payload": {} }),
    )
    .await;
    receiver.wait_for(1).await;
    let (_, deliveries) = app
        .get(&format!("/v1/tenants/{tenant}/deliveries"), &token)
        .await;
    let delivery = deliveries["data"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_string();
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{tenant}/deliveries/{delivery}/replay"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{tenant}/console-links"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.delete(&base, &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .delete(&format!("/v1/api-keys/{key_id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Two per page, so the cursor is exercised.
    let entries = app.audit("/v1/admin/audit", ADMIN_TOKEN, 2).await;
    let actions: Vec<&str> = entries
        .iter()
        .rev()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "api_key.created",
            "tenant.created",
            "endpoint.created",
            "endpoint.updated",
            "endpoint.secret_read",
            "endpoint.secret_rotated",
            "delivery.replayed",
            "console_link.issued",
            "endpoint.deleted",
            "api_key.revoked",
        ]
    );
    let by_key: Vec<&Value> = entries
        .iter()
        .filter(|e| e["actor_kind"] == "api_key")
        .collect();
    assert_eq!(by_key.len(), 8);
    for e in &by_key {
        assert_eq!(e["actor_id"], key_id.as_str(), "{e}");
        assert_eq!(e["actor_name"], "billing service");
        assert_eq!(e["address"], "127.0.0.1", "{e}");
        assert_eq!(e["tenant_id"], tenant.as_str(), "{e}");
        assert!(
            e["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "{e}"
        );
    }
    let update = entries
        .iter()
        .find(|e| e["action"] == "endpoint.updated")
        .expect("update");
    assert_eq!(update["request_id"], "audit-test-patch");
    assert_eq!(update["target_id"], endpoint.as_str());
    assert_eq!(
        update["details"]["fields"],
        json!(["description", "disabled"])
    );
    let admin: Vec<&Value> = entries
        .iter()
        .filter(|e| e["actor_kind"] == "admin")
        .collect();
    assert_eq!(
        admin.len(),
        2,
        "the admin token created and revoked the key"
    );
    let text = serde_json::to_string(&entries).expect("json");
    for s in [&secret, &new_secret, &token] {
        assert!(!text.contains(s.as_str()), "a secret in the audit log");
    }
    // Filters.
    let reads = app
        .audit(
            "/v1/admin/audit?action=endpoint.secret_read",
            ADMIN_TOKEN,
            50,
        )
        .await;
    assert_eq!(reads.len(), 1);
    let mine = app
        .audit(&format!("/v1/admin/audit?actor={key_id}"), ADMIN_TOKEN, 50)
        .await;
    assert_eq!(mine.len(), 8);

    // The tenant's own view, for a key that reaches it, holds only its entries.
    let (_, other) = app.tenant().await;
    let reader = app.scoped_key(Some(&[&tenant]), Some(vec!["read"])).await;
    let own = app
        .audit(&format!("/v1/tenants/{tenant}/audit"), &reader, 3)
        .await;
    assert_eq!(own.len(), 8, "{own:?}");
    assert!(own.iter().all(|e| e["tenant_id"] == tenant.as_str()));
    let (status, _) = app
        .get(&format!("/v1/tenants/{other}/audit"), &reader)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Append-only, even for the database owner.
    for sql in [
        "UPDATE audit_log SET actor_name = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql)
            .execute(app.store.pool())
            .await
            .expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn tenants_over_their_ingest_rate_or_endpoint_limit_are_refused_first() {
    let app = TestApp::spawn().await;
    let (key, tenant) = app.tenant().await;
    let (status, t) = app
        .put(
            &format!("/v1/admin/tenants/{tenant}/limits"),
            ADMIN_TOKEN,
            json!({ "ingest_rate": 1, "max_endpoints": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["ingest_rate"], 1);
    let event = json!({ "event_type": "order.paid", "payload": {} });
    let path = format!("/v1/tenants/{tenant}/events");
    // One event a second, so a second's worth is one event: the next within the
    // second is refused (a wide margin even on a loaded machine), and a batch of
    // two is more than a second's worth whenever it comes.
    app.event(&key, &tenant, event.clone()).await;
    let res = app
        .http
        .post(app.url(&path))
        .bearer_auth(&key)
        .json(&event)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, _) = app
        .post(
            &format!("{path}/batch"),
            &key,
            json!({ "events": [event.clone(), event.clone()] }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Lift the limit and send one more: once it is stored, exactly two are,
    // so nothing refused was published.
    let (status, _) = app
        .put(
            &format!("/v1/admin/tenants/{tenant}/limits"),
            ADMIN_TOKEN,
            json!({ "max_endpoints": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let last = app.event(&key, &tenant, event).await;
    app.wait_for_count("SELECT count(*) FROM events WHERE id = $1", &last, 1)
        .await;
    assert_eq!(app.count("events").await, 2);

    let receiver = Receiver::start().await;
    app.endpoint(&key, &tenant, &receiver.url, None).await;
    let (status, res) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            &key,
            json!({ "url": receiver.url }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{res}");
    assert_eq!(res["error"]["code"], "quota_exceeded");
    assert_eq!(app.count("endpoints").await, 1);
    let changes = app
        .audit(
            "/v1/admin/audit?action=tenant.limits_changed",
            ADMIN_TOKEN,
            50,
        )
        .await;
    assert_eq!(changes.len(), 2);
}

#[tokio::test]
async fn concurrent_endpoint_creations_never_pass_the_limit() {
    let app = TestApp::spawn().await;
    let (key, tenant) = app.tenant().await;
    let (status, _) = app
        .put(
            &format!("/v1/admin/tenants/{tenant}/limits"),
            ADMIN_TOKEN,
            json!({ "max_endpoints": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let receiver = Receiver::start().await;
    let path = format!("/v1/tenants/{tenant}/endpoints");
    let body = json!({ "url": receiver.url });
    let results =
        futures_util::future::join_all((0..24).map(|_| app.post(&path, &key, body.clone()))).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    for (status, res) in &results {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::CONFLICT && res["error"]["code"] == "quota_exceeded"),
            "{status}: {res}"
        );
    }
    assert_eq!(created, 2, "exactly the limit is created");
    assert_eq!(app.count("endpoints").await, 2);
    let logged = app
        .audit("/v1/admin/audit?action=endpoint.created", ADMIN_TOKEN, 50)
        .await;
    assert_eq!(
        logged.len(),
        2,
        "only the creations that happened are recorded"
    );
}

#[tokio::test]
async fn a_tenants_own_log_names_no_operator_and_keeps_no_url_secret() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (_, tenant) = app.tenant().await;
    // The operator creates an endpoint whose URL carries a token in its query.
    let url = format!("{}?token=s3cret-in-query", receiver.url);
    let (status, created) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            ADMIN_TOKEN,
            json!({ "url": url }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let reader = app.scoped_key(Some(&[&tenant]), Some(vec!["read"])).await;
    let own = app
        .audit(
            &format!("/v1/tenants/{tenant}/audit?action=endpoint.created"),
            &reader,
            50,
        )
        .await;
    assert_eq!(own.len(), 1, "{own:?}");
    let e = &own[0];
    assert_eq!(e["actor_kind"], "operator", "{e}");
    assert_eq!(e["actor_name"], "operator", "{e}");
    assert!(e["actor_id"].is_null() && e["address"].is_null(), "{e}");
    let recorded = e["details"]["url"].as_str().expect("url");
    assert!(recorded.ends_with("?redacted"), "{recorded}");
    // The operator's own view still says who and from where; no view holds the token.
    let all = app
        .audit(
            &format!("/v1/admin/audit?tenant={tenant}&action=endpoint.created"),
            ADMIN_TOKEN,
            50,
        )
        .await;
    assert_eq!(all[0]["actor_kind"], "admin");
    assert_eq!(all[0]["address"], "127.0.0.1");
    let stored: Vec<String> = sqlx::query_scalar("SELECT details::text FROM audit_log")
        .fetch_all(app.store.pool())
        .await
        .expect("audit rows");
    assert!(stored.iter().all(|d| !d.contains("s3cret")), "{stored:?}");
}
