//! The console's forms over HTTP against the real services: customers add, edit,
//! rotate and test endpoints; operators create tenants and API keys, revoke keys and
//! replay hand-picked dead letters. Each checks what the subscriber got or the API says.

use axum::http::StatusCode;
use serde_json::json;

use crate::console::{
    another_tenants_session, browser, console_link, csrf_of, open_console, page_text,
};
use crate::helpers::{ADMIN_TOKEN, PATIENCE, Receiver, Subscriber, TestApp, verifies};

/// The `whsec_`/`hr_` value a "shown once" page displays.
fn shown_once(page: &str, prefix: &str) -> String {
    let start = page
        .find(&format!(">{prefix}"))
        .expect("a secret on the page")
        + 1;
    page[start..].split('<').next().expect("text").to_string()
}

async fn post_form(
    client: &reqwest::Client,
    url: String,
    form: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let res = client.post(url).form(form).send().await.expect("post");
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_string());
    (status, res.text().await.expect("body"), location)
}

#[tokio::test]
async fn customers_add_edit_rotate_and_test_endpoints_from_the_console() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let client = browser();
    open_console(&client, &console_link(&app, &key, &tenant).await).await;
    let csrf = csrf_of(&page_text(&client, app.url("/console/endpoints/new")).await);
    let endpoints = format!("/v1/tenants/{tenant}/endpoints");

    // Bad input is shown on the form again, and nothing is stored.
    let (status, page, _) = post_form(
        &client,
        app.url("/console/endpoints"),
        &[
            ("csrf", &csrf),
            ("url", "ftp://example.com/hook"),
            ("rate_limit_per_second", "5"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("url must use http or https"), "{page}");
    assert!(
        page.contains("value=\"ftp://example.com/hook\""),
        "the form keeps what was typed"
    );
    let (status, _, _) = post_form(
        &client,
        app.url("/console/endpoints"),
        &[("csrf", "forged"), ("url", &receiver.url)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = app.get(&endpoints, &key).await;
    assert_eq!(list["data"].as_array().expect("data").len(), 0, "{list}");

    // Added: the secret is shown once and signs what the subscriber receives.
    let (status, page, _) = post_form(
        &client,
        app.url("/console/endpoints"),
        &[
            ("csrf", &csrf),
            ("url", &receiver.url),
            ("description", "orders"),
            ("event_types", "order.created, invoice.*"),
            ("rate_limit_per_second", "50"),
            ("rate_limit_burst", ""),
            ("timeout_ms", "2000"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let secret = shown_once(&page, "whsec_");
    let (_, list) = app.get(&endpoints, &key).await;
    let e = list["data"][0].clone();
    let endpoint = e["id"].as_str().expect("id").to_string();
    assert_eq!(e["event_types"], json!(["order.created", "invoice.*"]));
    assert_eq!(
        (
            e["rate_limit_per_second"].as_i64(),
            e["timeout_ms"].as_i64()
        ),
        (Some(50), Some(2000))
    );
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": {} }),
    )
    .await;
    let got = receiver.wait_for(1).await;
    assert!(verifies(&secret, &got[0]));

    // Edited: every event type, no rate limit.
    let edit = app.url(&format!("/console/endpoints/{endpoint}/edit"));
    let form = page_text(&client, edit.clone()).await;
    assert!(
        form.contains("value=\"order.created, invoice.*\""),
        "prefilled: {form}"
    );
    let (status, _, location) = post_form(
        &client,
        edit,
        &[
            ("csrf", &csrf),
            ("url", &receiver.url),
            ("event_types", ""),
            ("rate_limit_per_second", ""),
            ("timeout_ms", "2000"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some(format!("/console/endpoints/{endpoint}").as_str())
    );
    let (_, e) = app.get(&format!("{endpoints}/{endpoint}"), &key).await;
    assert!(
        e["event_types"].is_null() && e["rate_limit_per_second"].is_null(),
        "{e}"
    );

    // Rotated with an hour of grace: both secrets sign the next message.
    let (status, page, _) = post_form(
        &client,
        app.url(&format!("/console/endpoints/{endpoint}/rotate")),
        &[("csrf", &csrf), ("grace", "3600")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rotated = shown_once(&page, "whsec_");
    assert_ne!(rotated, secret);
    let detail = page_text(&client, app.url(&format!("/console/endpoints/{endpoint}"))).await;
    assert!(
        detail.contains("secret-overlap") && !detail.contains(&rotated),
        "shown only once"
    );
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "user.created", "payload": {} }),
    )
    .await;
    let got = receiver.wait_for(2).await;
    assert!(verifies(&secret, &got[1]) && verifies(&rotated, &got[1]));

    // A test event: the page it leads to is its delivery, and the subscriber gets it.
    let (status, _, location) = post_form(
        &client,
        app.url(&format!("/console/endpoints/{endpoint}/test")),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let delivery = location
        .expect("to the delivery")
        .strip_prefix("/console/deliveries/")
        .expect("a delivery page")
        .to_string();
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].header("webhook-id"), delivery);
    assert!(String::from_utf8_lossy(&got[2].body).contains("hookrelay.test"));

    // The live island's snapshot of that delivery, for this tenant only.
    let progress = format!("/console/deliveries/{delivery}/progress");
    let snapshot = tokio::time::timeout(PATIENCE, async {
        loop {
            let res = client.get(app.url(&progress)).send().await.expect("get");
            let s: serde_json::Value = res.json().await.expect("json");
            if s["finished"] == true {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("the test delivery finishes");
    assert_eq!(
        (snapshot["status"].as_str(), snapshot["count"].as_i64()),
        (Some("delivered"), Some(1))
    );
    let stranger = another_tenants_session(&app).await;
    let res = stranger.get(app.url(&progress)).send().await.expect("get");
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "another tenant's delivery"
    );
    // Nor can another tenant touch this endpoint through the forms.
    let theirs = csrf_of(&page_text(&stranger, app.url("/console/endpoints/new")).await);
    for (action, form) in [
        ("edit", vec![("url", receiver.url.as_str())]),
        ("rotate", vec![("grace", "0")]),
        ("test", vec![]),
        ("state", vec![("disabled", "true")]),
    ] {
        let mut fields = vec![("csrf", theirs.as_str())];
        fields.extend(form);
        let (status, _, _) = post_form(
            &stranger,
            app.url(&format!("/console/endpoints/{endpoint}/{action}")),
            &fields,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{action} on another tenant's endpoint"
        );
    }
    let (_, e) = app.get(&format!("{endpoints}/{endpoint}"), &key).await;
    assert!(
        e["disabled"] == false && e["previous_secret_expires_at"].is_string(),
        "{e}"
    );

    // Health at a glance counts every attempt (from the per-minute rollup).
    app.wait_for_delivered(3).await;
    let list = page_text(&client, app.url("/console/endpoints")).await;
    assert!(list.contains("100.0 %") && list.contains(" of 3"), "{list}");
}

/// A client signed in to the console as the operator.
async fn operator_session(app: &TestApp) -> reqwest::Client {
    let client = browser();
    let (status, _, _) = post_form(
        &client,
        app.url("/console/login"),
        &[("token", ADMIN_TOKEN)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    client
}

#[tokio::test]
async fn operators_manage_tenants_keys_and_replay_picked_dead_letters() {
    let app = TestApp::builder()
        .config(|c| c.retry.max_attempts = Some(1))
        .start()
        .await;
    let client = operator_session(&app).await;
    let csrf = csrf_of(&page_text(&client, app.url("/console/admin/tenants")).await);

    // Tenants: created, listed, a taken uid refused with a message.
    for _ in 0..2 {
        post_form(
            &client,
            app.url("/console/admin/tenants"),
            &[("csrf", &csrf), ("name", "Globex"), ("uid", "globex")],
        )
        .await;
    }
    let key = app.producer_key().await;
    let (status, t) = app.get("/v1/tenants/globex", &key).await;
    assert_eq!(
        (status, t["name"].as_str()),
        (StatusCode::OK, Some("Globex"))
    );
    let (status, _, location) = post_form(
        &client,
        app.url("/console/admin/tenants"),
        &[("csrf", &csrf), ("name", "Again"), ("uid", "globex")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = page_text(&client, app.url(&location.expect("back to the form"))).await;
    assert!(
        page.contains("Another tenant already has this uid."),
        "{page}"
    );
    assert!(page.contains("Globex"));

    // API keys: shown once, usable, listed by hint, revoked at once.
    let (status, page, _) = post_form(
        &client,
        app.url("/console/admin/api-keys"),
        &[("csrf", &csrf), ("name", "billing")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_key = shown_once(&page, "hr_");
    assert_eq!(app.get("/v1/tenants", &new_key).await.0, StatusCode::OK);
    let list = page_text(&client, app.url("/console/admin/api-keys")).await;
    assert!(list.contains("billing") && list.contains(&new_key[..8]) && !list.contains(&new_key));
    let (_, keys) = app.get("/v1/api-keys", ADMIN_TOKEN).await;
    let id = keys["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|k| k["name"] == "billing")
        .expect("listed")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, _, _) = post_form(
        &client,
        app.url(&format!("/console/admin/api-keys/{id}/revoke")),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/v1/tenants", &new_key).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Two dead letters; the operator ticks one and only that one is re-sent.
    let failing = StatusCode::INTERNAL_SERVER_ERROR;
    let receiver = Receiver::scripted(vec![(failing, None); 2], StatusCode::OK, "ok").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let mut dead = Vec::new();
    for _ in 0..2 {
        let event = app
            .event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
            .await;
        let d = app.settled_deliveries(&key, &tenant, &event, 1).await[0].clone();
        assert_eq!(d["status"], "dead");
        dead.push(d["id"].as_str().expect("id").to_string());
    }
    let (status, page, _) = post_form(
        &client,
        app.url("/console/admin/dead/replay-picked"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nothing ticked: {page}");
    let (status, _, _) = post_form(
        &client,
        app.url("/console/admin/dead/replay-picked"),
        &[("csrf", "forged"), ("id", &dead[0])],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a forged form replays nothing"
    );
    let (status, _, location) = post_form(
        &client,
        app.url("/console/admin/dead/replay-picked"),
        &[("csrf", &csrf), ("id", &dead[0])],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = page_text(&client, app.url(&location.expect("back to the list"))).await;
    assert!(page.contains("Replaying 1 of the 1 selected."), "{page}");
    app.wait_for_json(
        &format!("/v1/tenants/{tenant}/deliveries/{}", dead[0]),
        &key,
        "the picked dead letter delivered",
        |d| d["status"] == "delivered",
    )
    .await;
    let (_, other) = app
        .get(
            &format!("/v1/tenants/{tenant}/deliveries/{}", dead[1]),
            &key,
        )
        .await;
    assert_eq!(other["status"], "dead", "the one not ticked stays dead");
}

#[tokio::test]
async fn the_fleet_page_counts_broker_dead_letters_with_the_latest_reason() {
    let app = TestApp::spawn().await;
    let client = operator_session(&app).await;
    let page = page_text(&client, app.url("/console/admin/fleet")).await;
    assert!(
        page.contains("No message is dead-lettered on the broker"),
        "{page}"
    );
    let ingest = app.config.topology().ingest_queue();
    let publisher = app.publisher();
    for reason in ["an older reason", "tenant 42 does not exist"] {
        publisher
            .dead_letter(&ingest, b"{}", reason)
            .await
            .expect("dead-lettered");
    }
    let page = page_text(&client, app.url("/console/admin/fleet")).await;
    assert!(
        page.contains("2 messages no consumer could handle"),
        "{page}"
    );
    assert!(
        page.contains("tenant 42 does not exist"),
        "the latest reason: {page}"
    );
    assert!(!page.contains("an older reason"));
}

#[tokio::test]
async fn customers_order_filter_pause_and_cancel_from_the_console() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let client = browser();
    open_console(&client, &console_link(&app, &key, &tenant).await).await;
    let page = page_text(&client, app.url(&format!("/console/endpoints/{endpoint}"))).await;
    let csrf = csrf_of(&page);
    assert!(page.contains("id=\"controls\""), "{page}");

    // The edit form sets the order, the channels and the filter; a bad filter is
    // shown on the form again and changes nothing.
    let edit = app.url(&format!("/console/endpoints/{endpoint}/edit"));
    let bad = [
        ("csrf", csrf.as_str()),
        ("url", receiver.url.as_str()),
        ("filter", r#"{"data.amount": {"$gtx": 1}}"#),
    ];
    let (status, page, _) = post_form(&client, edit.clone(), &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("unknown operator"), "{page}");
    let good = [
        ("csrf", csrf.as_str()),
        ("url", receiver.url.as_str()),
        ("ordering", "strict"),
        ("on_dead", "stop"),
        ("channels", "eu, billing"),
        ("filter", r#"{"data.amount": {"$gte": 100}}"#),
    ];
    let (status, _, _) = post_form(&client, edit, &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    let (_, e) = app.get(&path, &key).await;
    assert_eq!(e["ordering"], "strict");
    assert_eq!(e["on_dead"], "stop");
    assert_eq!(e["channels"], json!(["billing", "eu"]));
    assert_eq!(e["filter"], json!({ "data.amount": { "$gte": 100 } }));

    // Pause from the endpoint page: what comes waits, and the page says how much.
    let pause = app.url(&format!("/console/endpoints/{endpoint}/pause"));
    let (status, _, _) = post_form(
        &client,
        pause.clone(),
        &[("csrf", &csrf), ("paused", "true")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let event = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "order.paid", "payload": { "data": { "amount": 500 } }, "channels": ["eu"] }),
        )
        .await;
    app.wait_for_json(&format!("{path}/backlog"), &key, "one held", |b| {
        b["waiting"] == 1
    })
    .await;
    let page = page_text(&client, app.url(&format!("/console/endpoints/{endpoint}"))).await;
    assert!(page.contains("Resume"), "{page}");
    // Would it receive that event? With its own filter yes; with a stricter one, no.
    let test = app.url(&format!("/console/endpoints/{endpoint}/filter-test"));
    let (status, page, _) = post_form(
        &client,
        test.clone(),
        &[("csrf", &csrf), ("event_id", &event)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("would receive the event"), "{page}");
    let stricter = [
        ("csrf", csrf.as_str()),
        ("event_id", event.as_str()),
        ("filter", r#"{"data.amount": {"$gt": 1000}}"#),
    ];
    let (_, page, _) = post_form(&client, test, &stricter).await;
    assert!(page.contains("would not receive the event"), "{page}");

    // Cancel the held delivery from its page: it says who did.
    let (_, list) = app
        .get(
            &format!("/v1/tenants/{tenant}/events/{event}/deliveries"),
            &key,
        )
        .await;
    let delivery = list["data"][0]["id"]
        .as_str()
        .expect("a delivery")
        .to_string();
    let page = page_text(&client, app.url(&format!("/console/deliveries/{delivery}"))).await;
    assert!(page.contains("id=\"held\""), "{page}");
    let cancel = app.url(&format!("/console/deliveries/{delivery}/cancel"));
    let (status, _, _) = post_form(&client, cancel, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = page_text(&client, app.url(&format!("/console/deliveries/{delivery}"))).await;
    assert!(page.contains("id=\"cancelled-by\""), "{page}");
    let (_, d) = app
        .get(&format!("/v1/tenants/{tenant}/deliveries/{delivery}"), &key)
        .await;
    assert_eq!(d["status"], "cancelled");
    let (status, _, _) = post_form(&client, pause, &[("csrf", &csrf), ("paused", "false")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, e) = app.get(&path, &key).await;
    assert_eq!(e["paused"], false);
    assert!(
        receiver.received().is_empty(),
        "the cancelled delivery never went out"
    );
}
