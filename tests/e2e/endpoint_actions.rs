//! Secret rotation, test events and API key revocation, through the API against the
//! real services: what the subscriber receives and what the gateway accepts.

use axum::http::StatusCode;
use hookrelay_signature::Secret;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Receiver, TestApp, verifies};

/// Asks for a test event to the endpoint; the answer.
async fn send_test(app: &TestApp, key: &str, tenant: &str, endpoint: &str) -> (StatusCode, Value) {
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}/test");
    app.post(&path, key, json!({})).await
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_until_the_grace_period_ends() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let (endpoint, old) = app.endpoint(&key, &tenant, &receiver.url, None).await;
    let rotate = format!("/v1/tenants/{tenant}/endpoints/{endpoint}/secret/rotate");

    let (status, body) = app
        .post(&rotate, &key, json!({ "grace_period_seconds": 3600 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["secret"].as_str().expect("secret").to_string();
    assert_ne!(new, old);
    assert!(body["previous_secret_expires_at"].is_string(), "{body}");
    let (_, shown) = app
        .get(&format!("/v1/tenants/{tenant}/endpoints/{endpoint}"), &key)
        .await;
    assert_eq!(
        shown["previous_secret_expires_at"],
        body["previous_secret_expires_at"]
    );

    app.event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(verifies(&old, &got[0]), "the old secret still verifies");
    assert!(verifies(&new, &got[0]), "the new secret verifies");
    standardwebhooks::Webhook::new(&old)
        .expect("secret")
        .verify(&got[0].body, &got[0].headers)
        .expect("a Standard Webhooks library verifies with the old secret too");

    // A second rotation within the grace period (a retried call, a double click)
    // keeps the first secret signing too.
    let (_, body) = app
        .post(&rotate, &key, json!({ "grace_period_seconds": 3600 }))
        .await;
    let newer = body["secret"].as_str().expect("secret").to_string();
    app.event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
        .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 3);
    assert!(verifies(&old, &got[1]) && verifies(&new, &got[1]) && verifies(&newer, &got[1]));

    // When the grace periods are over, only the current secret signs.
    sqlx::query(
        "UPDATE endpoints SET previous_secrets_expire_at =
            ARRAY(SELECT now() - interval '1 second' FROM unnest(previous_secrets_expire_at))",
    )
    .execute(app.store.pool())
    .await
    .expect("let the grace periods pass");
    let (_, shown) = app
        .get(&format!("/v1/tenants/{tenant}/endpoints/{endpoint}"), &key)
        .await;
    assert!(shown["previous_secret_expires_at"].is_null(), "{shown}");
    app.event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
        .await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].header("webhook-signature").split(' ').count(), 1);
    assert!(verifies(&newer, &got[2]) && !verifies(&new, &got[2]));

    // Rotating with no grace ends every old secret at once (say, after a leak).
    app.post(&rotate, &key, json!({ "grace_period_seconds": 3600 }))
        .await;
    let (status, body) = app
        .post(&rotate, &key, json!({ "grace_period_seconds": 0 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["previous_secret_expires_at"].is_null(), "{body}");
    let newest = body["secret"].as_str().expect("secret").to_string();
    app.event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
        .await;
    let got = receiver.wait_for(4).await;
    assert_eq!(got[3].header("webhook-signature").split(' ').count(), 1);
    assert!(verifies(&newest, &got[3]));
    assert!(!verifies(&newer, &got[3]) && !verifies(&old, &got[3]));

    // A secret of the caller's own, and bad input.
    let own = Secret::from_bytes(vec![7; 32]).expect("key").to_whsec();
    let (status, body) = app.post(&rotate, &key, json!({ "secret": own })).await;
    assert_eq!(
        (status, body["secret"].as_str()),
        (StatusCode::OK, Some(own.as_str()))
    );
    let (status, body) = app
        .post(&rotate, &key, json!({ "grace_period_seconds": 8 * 86400 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .post(&rotate, &key, json!({ "secret": "not-a-secret" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints/{unknown}/secret/rotate"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The secret the API reports is the newest.
    let (_, current) = app
        .get(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}/secret"),
            &key,
        )
        .await;
    assert_eq!(current["secret"].as_str(), Some(own.as_str()));
}

#[tokio::test]
async fn a_test_event_reaches_only_that_endpoint_whatever_it_subscribes_to() {
    let app = TestApp::spawn().await;
    let (receiver, bystander) = (Receiver::start().await, Receiver::start().await);
    let (key, tenant) = app.tenant().await;
    let (endpoint, secret) = app
        .endpoint(&key, &tenant, &receiver.url, Some(&["order.created"]))
        .await;
    app.endpoint(&key, &tenant, &bystander.url, None).await;

    let (status, body) = send_test(&app, &key, &tenant, &endpoint).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delivery = body["delivery_id"].as_str().expect("id").to_string();
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-id"), delivery);
    assert!(verifies(&secret, &got[0]));
    let payload: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(payload["type"], "hookrelay.test");
    assert_eq!(payload["endpoint_id"], endpoint.as_str());
    let d = app
        .wait_for_json(
            &format!("/v1/tenants/{tenant}/deliveries/{delivery}"),
            &key,
            "the test delivery delivered",
            |d| d["status"] == "delivered",
        )
        .await;
    assert_eq!(d["event_type"], "hookrelay.test");
    assert!(bystander.received().is_empty(), "only the tested endpoint");

    // A disabled endpoint gets no test event, and says why.
    app.patch(
        &format!("/v1/tenants/{tenant}/endpoints/{endpoint}"),
        &key,
        json!({ "disabled": true }),
    )
    .await;
    let (status, body) = send_test(&app, &key, &tenant, &endpoint).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "endpoint_disabled");

    let (other_key, other_tenant) = app.tenant().await;
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{other_tenant}/endpoints/{endpoint}/test"),
            &other_key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's endpoint");
}

#[tokio::test]
async fn api_keys_are_listed_without_the_key_and_revoked_at_once() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .post("/v1/api-keys", ADMIN_TOKEN, json!({ "name": "billing" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("key").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        created["hint"].as_str(),
        Some(format!("{}…", &key[..8]).as_str())
    );
    let (status, _) = app.get("/v1/tenants", &key).await;
    assert_eq!(status, StatusCode::OK);

    let (status, list) = app.get("/v1/api-keys", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let listed = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(listed["name"], "billing");
    assert!(listed["revoked_at"].is_null());
    assert!(!list.to_string().contains(&key), "never the key itself");
    let (status, _) = app.get("/v1/api-keys", &key).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "producers cannot list keys"
    );

    let (status, _) = app.delete(&format!("/v1/api-keys/{id}"), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/v1/tenants", &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app.delete(&format!("/v1/api-keys/{id}"), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already revoked");
    let (_, list) = app.get("/v1/api-keys", ADMIN_TOKEN).await;
    assert!(
        list["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|k| k["id"] == id.as_str() && k["revoked_at"].is_string())
    );
}
