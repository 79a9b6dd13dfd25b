//! Master keys against the real binary: a process with the wrong key refuses to
//! start, naming the setting; `hookrelay keys rotate` re-encrypts every endpoint
//! secret under a new key (resuming an interrupted rotation), after which the old
//! key can go and deliveries still verify; console sessions outlive the rotation.

use std::process::Output;

use axum::http::StatusCode;
use hookrelay_core::crypto::Cipher;
use serde_json::json;

use crate::console::{browser, page_text};
use crate::helpers::{
    ADMIN_TOKEN, Receiver, TestApp, b64, run_to_end, spawn_ready, stderr, verifies,
};

/// The key the test's in-process gateway uses, as a `HOOKRELAY_ENCRYPTION_KEYS` entry.
fn default_key(app: &TestApp) -> String {
    crate::helpers::encryption_keys(&app.config)
}

async fn run(cmd: &mut tokio::process::Command) -> Output {
    run_to_end(cmd).await
}

/// `hookrelay ROLE` with these master keys instead of the test's.
fn with_keys(app: &TestApp, role: &str, keys: &str) -> tokio::process::Command {
    let mut cmd = app.hookrelay_command(role);
    cmd.env("HOOKRELAY_ENCRYPTION_KEYS", keys);
    cmd
}

/// The key id of every endpoint secret (current and previous) in the database.
async fn key_ids(app: &TestApp) -> Vec<Option<String>> {
    let rows: Vec<(Vec<u8>, Vec<Vec<u8>>)> =
        sqlx::query_as("SELECT secret_ciphertext, previous_secrets FROM endpoints")
            .fetch_all(app.store.pool())
            .await
            .expect("secrets");
    rows.iter()
        .flat_map(|(s, prev)| std::iter::once(s).chain(prev))
        .map(|c| Cipher::key_id_of(c).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_process_with_the_wrong_key_refuses_to_start_naming_the_setting() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::start().await;
    app.subscriber(&receiver.url).await;
    let stranger = format!("default:{}", b64(&[42u8; 32]));

    // No check value stored yet: the endpoint secrets give the wrong key away.
    for role in ["dispatcher", "gateway"] {
        let out = run(&mut with_keys(&app, role, &stranger)).await;
        assert!(!out.status.success(), "{role} must not start");
        let err = stderr(&out);
        assert!(err.contains("HOOKRELAY_ENCRYPTION_KEY"), "{role}: {err}");
        assert!(err.contains("decrypts"), "{role}: {err}");
    }

    // The right key records its check value; a different key under its id is refused.
    let status = run(with_keys(&app, "keys", &default_key(&app)).arg("status")).await;
    assert!(status.status.success(), "{}", stderr(&status));
    let checks: i64 = sqlx::query_scalar("SELECT count(*) FROM master_key_checks")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert_eq!(checks, 1);
    // No secret left to sample: only the check value can give the key away now.
    sqlx::query("DELETE FROM endpoints")
        .execute(app.store.pool())
        .await
        .expect("delete the endpoints");
    let out = run(&mut with_keys(&app, "dispatcher", &stranger)).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not the key that was stored under that id"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_rotation_reencrypts_every_secret_resumes_and_the_old_key_can_go() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let mut secrets = Vec::new();
    for _ in 0..3 {
        secrets.push(app.endpoint(&key, &tenant, &receiver.url, None).await);
    }
    // One endpoint mid secret-rotation: its old secret still signs, so it is re-encrypted too.
    let (rotated, _) = &secrets[0];
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints/{rotated}/secret/rotate"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_secret = body["secret"].as_str().expect("secret").to_string();
    assert_eq!(key_ids(&app).await.len(), 4);
    assert!(
        key_ids(&app)
            .await
            .iter()
            .all(|k| k.as_deref() == Some("default"))
    );

    let both = format!("k2:{},{}", b64(&[2u8; 32]), default_key(&app));
    // An interrupted rotation: one endpoint done, then the process died.
    let cipher = Cipher::with_keys(
        &hookrelay_core::Config::from_lookup(|n| {
            (n == "HOOKRELAY_ENCRYPTION_KEYS").then(|| both.clone())
        })
        .expect("keys")
        .security
        .master_keys(),
    );
    let started = app
        .store
        .start_key_rotation("k2")
        .await
        .expect("start")
        .expect("none running");
    let partial = app
        .store
        .rotate_key_chunk(&started, 1, |row| {
            hookrelay_core::master_keys::reencrypt(&cipher, row)
        })
        .await
        .expect("chunk")
        .expect("rewritten");
    assert_eq!(
        (partial.done_count, partial.status.as_str()),
        (1, "running")
    );

    let out = run(with_keys(&app, "keys", &both).arg("rotate")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&started.id.to_string()),
        "resumed the same job: {stdout}"
    );
    assert!(stdout.contains("3 of 3 endpoints looked at"), "{stdout}");
    assert!(
        key_ids(&app)
            .await
            .iter()
            .all(|k| k.as_deref() == Some("k2"))
    );
    let job = app
        .store
        .latest_key_rotation()
        .await
        .expect("job")
        .expect("one");
    assert_eq!(
        (job.status.as_str(), job.done_count, job.total),
        ("done", 3, 3)
    );

    // The old key removed: the real binary starts, signs with the same secrets.
    let only_new = format!("k2:{}", b64(&[2u8; 32]));
    let (_serve, base) = spawn_ready(with_keys(&app, "serve", &only_new)).await;
    let res = app
        .http
        .post(format!("{base}/v1/tenants/{tenant}/events"))
        .bearer_auth(&key)
        .json(&json!({ "event_type": "order.created", "payload": { "n": 1 } }))
        .send()
        .await
        .expect("ingest");
    assert_eq!(res.status(), 202);
    let got = receiver.wait_for(3).await;
    for (endpoint, secret) in &secrets {
        let secret = if endpoint == rotated {
            &new_secret
        } else {
            secret
        };
        assert!(
            got.iter().any(|r| verifies(secret, r)),
            "endpoint {endpoint}'s delivery verifies with its secret"
        );
    }
    let res = app
        .http
        .get(format!(
            "{base}/v1/tenants/{tenant}/endpoints/{}/secret",
            secrets[1].0
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("secret");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["secret"], secrets[1].1.as_str());
}

#[tokio::test]
async fn console_sessions_outlive_a_key_rotation() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let client = browser();
    let res = crate::console::operator_login(&app, &client).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The same installation after a new key was put first: the cookie the old
    // key signed still opens the operator's pages.
    let keys = format!("k2:{},{}", b64(&[2u8; 32]), default_key(&app));
    let mut serve = with_keys(&app, "serve", &keys);
    serve.env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN);
    let (_serve, base) = spawn_ready(serve).await;
    let page = page_text(&client, format!("{base}/console/admin/tenants")).await;
    assert!(page.contains("Tenants"), "still signed in: {page}");
    let res = client
        .get(format!("{base}/console/admin/tenants"))
        .send()
        .await
        .expect("page");
    assert_eq!(res.status(), StatusCode::OK);

    // Without the old key, that session is over.
    let mut serve2 = with_keys(&app, "serve", &format!("k2:{}", b64(&[2u8; 32])));
    serve2.env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN);
    let (_serve2, base2) = spawn_ready(serve2).await;
    let res = client
        .get(format!("{base2}/console/admin/tenants"))
        .send()
        .await
        .expect("page");
    assert!(
        res.url().path().ends_with("/console/login") || res.status() == StatusCode::SEE_OTHER,
        "sent to sign in again: {} {}",
        res.status(),
        res.url()
    );
}
