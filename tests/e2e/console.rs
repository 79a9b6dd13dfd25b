//! The console against real services: links, sessions, CSRF and tenant scoping over
//! HTTP, and the main journeys in headless Chromium (`console/browser`).

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Receiver, Subscriber, TestApp, browser_test};

/// Creates a console link for `tenant`; returns its URL.
pub(crate) async fn console_link(app: &TestApp, key: &str, tenant: &str) -> String {
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/console-links"),
            key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["expires_at"].is_string());
    body["url"].as_str().expect("url").to_string()
}

/// Signs `client` in to the operator console with the admin token.
pub(crate) async fn operator_login(app: &TestApp, client: &reqwest::Client) -> reqwest::Response {
    let login = client.post(app.url("/console/login"));
    login
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .expect("login")
}

/// Opens a console link as a person does: the link shows a button (and sets the
/// cookie its form is bound to), whose POST starts the session. Returns the POST's response (a redirect with the cookie).
pub(crate) async fn open_console(client: &reqwest::Client, link: &str) -> reqwest::Response {
    let page = client.get(link).send().await.expect("get the link");
    assert_eq!(page.status(), StatusCode::OK, "the link shows its button");
    let html = page.text().await.expect("body");
    assert!(html.contains("Open the console"), "{html}");
    let token = link.split("token=").nth(1).expect("a token in the link");
    let action = link
        .split("/console/open")
        .next()
        .expect("base")
        .to_string()
        + "/console/open";
    let csrf = csrf_of(&html);
    client
        .post(action)
        .form(&[("token", token), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("open")
}

/// A console session of a new tenant with nothing of its own.
pub(crate) async fn another_tenants_session(app: &TestApp) -> reqwest::Client {
    let (key, tenant) = app.tenant().await;
    let client = browser();
    open_console(&client, &console_link(app, &key, &tenant).await).await;
    client
}

/// The body of a console page, fetched with the client's session.
pub(crate) async fn page_text(client: &reqwest::Client, url: String) -> String {
    let res = client.get(url).send().await.expect("get");
    res.text().await.expect("body")
}

/// The CSRF token of the first form on a page.
pub(crate) fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_string()
}

/// A browser-like client that keeps cookies and does not follow redirects.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn links_sessions_and_forms_are_guarded() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&receiver.url).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "a", "payload": {} }))
        .await;
    let delivery = app.settled_deliveries(&key, &tenant, &event, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let link = console_link(&app, &key, &tenant).await;

    let client = browser();
    // Without a session there is nothing to see.
    let res = client
        .get(app.url(&format!("/console/deliveries/{delivery}")))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A tampered link opens nothing.
    let res = client.get(format!("{link}x")).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Fetching the link (as a link scanner does) uses nothing up.
    for _ in 0..2 {
        let res = browser().get(&link).send().await.expect("get");
        assert_eq!(res.status(), StatusCode::OK);
        let cookies: Vec<&str> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok())
            .collect();
        assert!(
            cookies.iter().all(|c| c.starts_with("hookrelay_open=")),
            "no session from a GET: {cookies:?}"
        );
    }
    let res = open_console(&client, &link).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    // A link opens one session only.
    let res = open_console(&browser(), &link).await;
    assert_eq!(res.status(), StatusCode::GONE);

    let res = client
        .get(app.url(&format!("/console/deliveries/{delivery}")))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("default-src 'none'")
    );
    let html = res.text().await.expect("body");
    assert!(
        html.contains(&delivery) && html.contains("Attempt 1"),
        "{html}"
    );

    // Search by event id finds the delivery; an unknown idempotency key finds nothing.
    let html = page_text(&client, app.url(&format!("/console/deliveries?q={event}"))).await;
    assert!(html.contains(&delivery), "{html}");
    let html = page_text(&client, app.url("/console/deliveries?q=no-such-key")).await;
    assert!(!html.contains(&delivery) && html.contains("No deliveries match"));

    // The event log: the event with how its deliveries stand, its page with the
    // payload and delivery; filters by delivery status; nothing for other tenants.
    let html = page_text(&client, app.url("/console/events")).await;
    assert!(
        html.contains(&event) && html.contains("1 of 1 delivered"),
        "{html}"
    );
    let html = page_text(&client, app.url(&format!("/console/events/{event}"))).await;
    assert!(
        html.contains(&delivery) && html.contains("Payload"),
        "{html}"
    );
    let html = page_text(&client, app.url("/console/events?status=dead")).await;
    assert!(
        !html.contains(&event) && html.contains("No events match"),
        "{html}"
    );
    let stranger = another_tenants_session(&app).await;
    let res = stranger
        .get(app.url(&format!("/console/events/{event}")))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A form post without the session's CSRF token is refused and changes nothing.
    let res = client
        .post(app.url(&format!("/console/deliveries/{delivery}/replay")))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, d) = app
        .get(&format!("/v1/tenants/{tenant}/deliveries/{delivery}"), &key)
        .await;
    assert_eq!(d["status"], "delivered");

    // The customer disables and re-enables the endpoint with the session's token.
    let page = page_text(&client, app.url(&format!("/console/endpoints/{endpoint}"))).await;
    let csrf = csrf_of(&page);
    for disabled in ["true", "false"] {
        let res = client
            .post(app.url(&format!("/console/endpoints/{endpoint}/state")))
            .form(&[("csrf", csrf.as_str()), ("disabled", disabled)])
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let (_, e) = app
            .get(&format!("/v1/tenants/{tenant}/endpoints/{endpoint}"), &key)
            .await;
        assert_eq!(e["disabled"].to_string(), disabled);
    }

    // Output is escaped: a hostile payload is shown as text.
    let hostile = app
        .event(
            &key,
            &tenant,
            json!({ "event_type": "a", "payload": { "note": "<script>alert(1)</script>" } }),
        )
        .await;
    let hostile = app.settled_deliveries(&key, &tenant, &hostile, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let html = page_text(&client, app.url(&format!("/console/deliveries/{hostile}"))).await;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );

    // The tenant session is no operator session; the admin token is checked.
    let res = client
        .get(app.url("/console/admin/dead"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = browser()
        .post(app.url("/console/login"))
        .form(&[("token", "wrong-token-wrong-token")])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn links_use_the_public_url_and_https_makes_the_cookie_secure() {
    let public = "https://hooks.example.test";
    let app = TestApp::builder()
        .config(|c| c.http.public_url = Some(public.into()))
        .without_dispatcher()
        .start()
        .await;
    let (key, tenant) = app.tenant().await;
    let link = console_link(&app, &key, &tenant).await;
    let path = link
        .strip_prefix(public)
        .expect("the link starts with the public URL");
    let res = open_console(&browser(), &app.url(path)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let app = TestApp::builder()
        .config(|c| c.retry.max_attempts = Some(1))
        .start()
        .await;
    let failing = StatusCode::INTERNAL_SERVER_ERROR;
    let receiver =
        Receiver::scripted(vec![(failing, None); 3], StatusCode::OK, "{\"ok\":true}").await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let mut events = Vec::new();
    for i in 0..3 {
        events.push(
            app.event(
                &key,
                &tenant,
                json!({ "event_type": "order.created", "payload": { "order": i } }),
            )
            .await,
        );
    }
    let failed = app.settled_deliveries(&key, &tenant, &events[0], 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    for e in &events[1..] {
        assert_eq!(
            app.settled_deliveries(&key, &tenant, e, 1).await[0]["status"],
            "dead"
        );
    }

    let other_receiver = Receiver::start().await;
    let Subscriber { key: other_key, tenant: other_tenant, endpoint: _ } =
        app.subscriber(&other_receiver.url).await;
    let other_event = app
        .event(
            &other_key,
            &other_tenant,
            json!({ "event_type": "a", "payload": {} }),
        )
        .await;
    let other = app
        .settled_deliveries(&other_key, &other_tenant, &other_event, 1)
        .await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    let slow = Receiver::slow(std::time::Duration::from_secs(2)).await;
    let link = console_link(&app, &key, &tenant).await;
    let base = app.url("");
    let env = [
        ("CONSOLE_BASE", base.as_str()),
        ("CONSOLE_LINK", &link),
        ("ENDPOINT_URL", &receiver.url),
        ("SLOW_ENDPOINT_URL", &slow.url),
        ("FAILED_DELIVERY", &failed),
        ("OTHER_DELIVERY", &other),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("DEAD_COUNT", "2"),
    ];
    browser_test("console.test.mjs", &env).await;
    // What the browser did really happened: 3 failures, the replay, the 2 dead
    // letters replayed, and the test event to the endpoint added in the browser.
    receiver.wait_for(6).await;
    slow.wait_for(1).await;
    app.wait_for_delivered(5).await;
}

/// The session cookie a response set, as `name=value`.
pub(crate) fn session_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("hookrelay_console="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string()
}
