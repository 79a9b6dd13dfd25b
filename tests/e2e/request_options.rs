//! Custom headers and endpoint authentication against the real services: the
//! headers and credentials arrive, an OAuth2 token from the test's own token
//! server serves many deliveries and is fetched again once on a `401`, a failing
//! token endpoint fails the attempt, and no secret value is found in the
//! database's attempts, audit rows or endpoint rows, in the debug log, or on the
//! console's pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::console::{browser, console_link, csrf_of, open_console, page_text};
use crate::helpers::{Receiver, TestApp, eventually, spawn_ready};

const HEADER_SECRET: &str = "hdr-secret-7f3a9c";
const PASSWORD: &str = "pw-secret-51e0b2";
const CLIENT_SECRET: &str = "cs-secret-c4d1e8";
const CONSOLE_PASSWORD: &str = "console-pw-93b7aa";

/// Serves `router` on a loopback port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    url
}

/// Adds an endpoint from `body`; returns it as created.
async fn created(app: &TestApp, key: &str, tenant: &str, body: Value) -> Value {
    let (status, created) = app
        .post(&format!("/v1/tenants/{tenant}/endpoints"), key, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// Rows of `table` whose text holds `needle`.
async fn rows_holding(app: &TestApp, table: &str, needle: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'"
    )))
    .bind(needle)
    .fetch_one(app.store.pool())
    .await
    .expect("search")
}

async fn assert_nowhere_in_database(app: &TestApp, secrets: &[&str]) {
    for secret in secrets {
        for table in ["attempts", "audit_log", "endpoints", "deliveries", "jobs"] {
            assert_eq!(
                rows_holding(app, table, secret).await,
                0,
                "{secret} in {table}"
            );
        }
    }
}

#[tokio::test]
async fn headers_and_basic_auth_arrive_and_their_secrets_are_shown_nowhere() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let created = created(
        &app,
        &key,
        &tenant,
        json!({
            "url": receiver.url,
            "headers": [
                { "name": "X-Team", "value": "payments" },
                { "name": "X-Api-Key", "value": HEADER_SECRET, "secret": true },
            ],
            "auth": { "type": "basic", "username": "hookrelay", "password": PASSWORD },
        }),
    )
    .await;
    assert_eq!(
        created["headers"][1],
        json!({ "name": "X-Api-Key", "value": "***", "secret": true })
    );
    assert_eq!(
        created["auth"],
        json!({ "type": "basic", "username": "hookrelay" })
    );
    let endpoint = created["id"].as_str().expect("id").to_string();
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": { "n": 1 } }),
    )
    .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("x-team"), "payments");
    assert_eq!(got[0].header("x-api-key"), HEADER_SECRET);
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("hookrelay:{PASSWORD}"));
    assert_eq!(got[0].header("authorization"), format!("Basic {basic}"));
    assert!(
        got[0].header("webhook-signature").starts_with("v1,"),
        "still signed"
    );

    // The attempt shows what was sent, secrets as ***.
    let attempts = app
        .wait_for_json(
            &format!("/v1/tenants/{tenant}/deliveries?endpoint_id={endpoint}"),
            &key,
            "the delivery to be delivered",
            |b| b["data"][0]["status"] == "delivered",
        )
        .await;
    let delivery = attempts["data"][0]["id"].as_str().expect("id").to_string();
    let (_, attempts) = app
        .get(
            &format!("/v1/tenants/{tenant}/deliveries/{delivery}/attempts"),
            &key,
        )
        .await;
    let sent = &attempts["data"][0]["request_headers"];
    assert_eq!(sent["x-api-key"], "***", "{sent}");
    assert_eq!(sent["authorization"], "Basic ***", "{sent}");
    assert_eq!(sent["x-team"], "payments");

    // A change keeps a secret header whose value it leaves out, and replaces the auth.
    let (status, changed) = app
        .patch(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}"),
            &key,
            json!({
                "headers": [{ "name": "X-Api-Key", "secret": true }],
                "auth": { "type": "bearer", "token": PASSWORD },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["auth"], json!({ "type": "bearer" }));
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": { "n": 2 } }),
    )
    .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].header("x-api-key"), HEADER_SECRET);
    assert_eq!(got[1].header("x-team"), "");
    assert_eq!(got[1].header("authorization"), format!("Bearer {PASSWORD}"));

    // Refused: a header the request owns; nothing changes.
    let (status, body) = app
        .patch(
            &format!("/v1/tenants/{tenant}/endpoints/{endpoint}"),
            &key,
            json!({ "headers": [{ "name": "Content-Type", "value": "text/plain" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The console's endpoint page and form show *** only.
    let client = browser();
    open_console(&client, &console_link(&app, &key, &tenant).await).await;
    for page in [
        format!("/console/endpoints/{endpoint}"),
        format!("/console/endpoints/{endpoint}/edit"),
    ] {
        let text = page_text(&client, app.url(&page)).await;
        assert!(text.contains("X-Api-Key"), "{page} shows the header");
        assert!(
            !text.contains(HEADER_SECRET) && !text.contains(PASSWORD),
            "{page} shows a secret"
        );
    }
    // The console's authentication form replaces the auth; the password stays hidden.
    let page = page_text(&client, app.url(&format!("/console/endpoints/{endpoint}"))).await;
    let form = [
        ("csrf", csrf_of(&page)),
        ("kind", "basic".to_string()),
        ("user", "console-user".to_string()),
        ("secret", CONSOLE_PASSWORD.to_string()),
    ];
    let res = client
        .post(app.url(&format!("/console/endpoints/{endpoint}/auth")))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert!(
        res.status().is_redirection() || res.status().is_success(),
        "{}",
        res.status()
    );
    let (_, shown) = app
        .get(&format!("/v1/tenants/{tenant}/endpoints/{endpoint}"), &key)
        .await;
    assert_eq!(
        shown["auth"],
        json!({ "type": "basic", "username": "console-user" })
    );
    let text = page_text(&client, app.url(&format!("/console/endpoints/{endpoint}"))).await;
    assert!(text.contains("console-user") && !text.contains(CONSOLE_PASSWORD));
    app.wait_for_delivered(2).await;
    assert_nowhere_in_database(&app, &[HEADER_SECRET, PASSWORD, CONSOLE_PASSWORD]).await;
}

/// The test's token server: counts token requests and checks the client's credentials.
async fn token_server(fail: bool) -> (String, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let router = axum::Router::new().route(
        "/token",
        post(move |headers: HeaderMap, body: String| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                use base64::Engine as _;
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("client-1:{CLIENT_SECRET}"));
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                if fail || auth != format!("Basic {basic}") || !body.contains("grant_type=client_credentials") {
                    return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": "server_error" })));
                }
                assert!(body.contains("scope=deliveries"), "{body}");
                (StatusCode::OK, axum::Json(json!({ "access_token": format!("tok-{n}"), "expires_in": 3600, "token_type": "Bearer" })))
            }
        }),
    );
    (format!("{}/token", serve(router).await), issued)
}

fn oauth_endpoint(url: &str, token_url: &str) -> Value {
    json!({
        "url": url,
        "auth": {
            "type": "oauth2", "token_url": token_url, "client_id": "client-1",
            "client_secret": CLIENT_SECRET, "scope": "deliveries",
        },
    })
}

#[tokio::test]
async fn one_oauth2_token_serves_many_deliveries_and_a_401_fetches_one_more() {
    let app = TestApp::spawn().await;
    let (token_url, issued) = token_server(false).await;
    // The receiver takes tok-1 for five requests, then refuses it; later tokens pass.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let receiver = serve(axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let mut seen = log.lock().expect("lock");
                let ok =
                    auth.starts_with("Bearer tok-") && (auth != "Bearer tok-1" || seen.len() < 5);
                seen.push(auth);
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    ))
    .await;
    let (key, tenant) = app.tenant().await;
    let created = created(
        &app,
        &key,
        &tenant,
        oauth_endpoint(&format!("{receiver}/hook"), &token_url),
    )
    .await;
    assert_eq!(created["auth"]["client_id"], "client-1");
    assert!(created["auth"].get("client_secret").is_none(), "{created}");
    for n in 0..12 {
        app.event(
            &key,
            &tenant,
            json!({ "event_type": "order.created", "payload": { "n": n } }),
        )
        .await;
    }
    app.wait_for_delivered(12).await;
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "one token, then one refresh after the 401"
    );
    let seen = seen.lock().expect("lock").clone();
    // Five taken with tok-1; each refused one (one or more, those in flight
    // when the receiver changed its mind) sent again with tok-2, as the rest.
    assert!(
        seen.iter().filter(|a| *a == "Bearer tok-1").count() >= 6,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|a| *a == "Bearer tok-2").count(),
        7,
        "{seen:?}"
    );
    assert_eq!(
        seen.len(),
        12 + seen.iter().filter(|a| *a == "Bearer tok-1").count() - 5
    );
    // Each 401 was answered within its attempt: one attempt per delivery.
    assert_eq!(app.count("attempts").await, 12);
    assert_nowhere_in_database(&app, &[CLIENT_SECRET, "tok-1", "tok-2"]).await;
}

#[tokio::test]
async fn a_failing_token_endpoint_fails_the_attempt_with_its_reason() {
    let app = TestApp::spawn().await;
    let (token_url, issued) = token_server(true).await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    created(
        &app,
        &key,
        &tenant,
        oauth_endpoint(&receiver.url, &token_url),
    )
    .await;
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": {} }),
    )
    .await;
    let error: String = eventually("the attempt to be recorded", || async {
        sqlx::query_scalar::<_, String>("SELECT error FROM attempts LIMIT 1")
            .fetch_optional(app.store.pool())
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no attempt yet".to_string())
    })
    .await;
    assert_eq!(error, "oauth2 token: token endpoint answered HTTP 500");
    let status: String = sqlx::query_scalar("SELECT status::text FROM deliveries")
        .fetch_one(app.store.pool())
        .await
        .expect("delivery");
    assert_eq!(status, "failed", "retried later like any failure");
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    assert!(
        receiver.received().is_empty(),
        "nothing sent without a token"
    );
}

#[tokio::test]
async fn no_secret_reaches_the_debug_log() {
    let mut app = TestApp::builder().without_dispatcher().start().await;
    let log_path = std::env::temp_dir().join(format!(
        "hookrelay-debug-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut cmd = app.hookrelay_command("serve");
    cmd.env("HOOKRELAY_LOG", "debug")
        .env("HOOKRELAY_ADMIN_TOKEN", crate::helpers::ADMIN_TOKEN)
        .stdout(log.try_clone().expect("clone"))
        .stderr(log);
    let (_serve, base) = spawn_ready(cmd).await;
    let (token_url, _) = token_server(false).await;
    let receiver = Receiver::start().await;
    // Everything below goes through the process whose log is read.
    app.base = base;
    let api = &app;
    let (key, tenant) = api.tenant().await;
    let mut endpoint = oauth_endpoint(&receiver.url, &token_url);
    endpoint["headers"] = json!([{ "name": "X-Api-Key", "value": HEADER_SECRET, "secret": true }]);
    created(api, &key, &tenant, endpoint).await;
    api.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": {} }),
    )
    .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("authorization"), "Bearer tok-1");
    let text = std::fs::read_to_string(&log_path).expect("read log");
    let _ = std::fs::remove_file(&log_path);
    assert!(text.contains("DEBUG"), "the log is at debug level");
    for secret in [HEADER_SECRET, CLIENT_SECRET, "tok-1"] {
        assert!(!text.contains(secret), "{secret} in the debug log");
    }
}
