//! Console sessions hold the permissions of the link that opened them: every
//! console form posted without its permission answers 403 and changes nothing,
//! pages hide what a session may not do, a link is never wider than its issuer;
//! the operator lists and ends sessions (its own links' too), and a deleted
//! tenant's sessions end at once.

use axum::http::StatusCode;
use serde_json::json;

use crate::console::{browser, csrf_of, open_console, page_text, session_cookie};
use crate::helpers::{ADMIN_TOKEN, Receiver, TestApp};

/// The CSRF token of a session, as its pages would carry it. A session whose pages
/// show no form still holds one: the permission check, not the token, refuses.
fn session_csrf(app: &TestApp, cookie: &str) -> String {
    let signer = hookrelay_core::signed_token::Signer::new(
        &app.config.security.master_keys(),
        "hookrelay console sessions",
    );
    let value = cookie.split_once('=').expect("name=value").1;
    let (claims, key): (serde_json::Value, _) = signer.verify_keyed(value).expect("our cookie");
    signer.digest(key, claims["nonce"].as_str().expect("nonce"))
}

/// Opens a console link issued with `body`; returns the client and its CSRF token.
async fn session(
    app: &TestApp,
    token: &str,
    tenant: &str,
    body: serde_json::Value,
) -> (reqwest::Client, String) {
    let (status, link) = app
        .post(&format!("/v1/tenants/{tenant}/console-links"), token, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let client = browser();
    let res = open_console(&client, link["url"].as_str().expect("url")).await;
    assert_eq!(res.status().as_u16(), 303);
    let csrf = session_csrf(app, &session_cookie(&res));
    (client, csrf)
}

/// Everything a console form could change, as one comparable text.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut all = Vec::new();
    for sql in [
        "SELECT coalesce(string_agg(e::text, '|' ORDER BY id), '') FROM endpoints e",
        "SELECT coalesce(string_agg(d::text, '|' ORDER BY id), '') FROM deliveries d",
        "SELECT count(*)::text FROM attempts",
        "SELECT count(*)::text FROM jobs",
        "SELECT count(*)::text FROM audit_log",
    ] {
        let text: String = sqlx::query_scalar(sql)
            .fetch_one(app.store.pool())
            .await
            .expect(sql);
        all.push(text);
    }
    all
}

/// A console form: where it posts, its fields besides the CSRF token, and the
/// permission it needs.
type Form = (String, Vec<(&'static str, &'static str)>, &'static str);

async fn post(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> (u16, String) {
    let res = client.post(url).form(form).send().await.expect("post");
    (res.status().as_u16(), res.text().await.expect("body"))
}

#[tokio::test]
async fn every_console_form_needs_its_permission_and_changes_nothing_without_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (key, tenant) = app.tenant().await;
    let (endpoint, _) = app.endpoint(&key, &tenant, &receiver.url, None).await;
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let delivery = app.settled_deliveries(&key, &tenant, &event, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    receiver.wait_for(1).await;

    // A key that may only issue console links, for this tenant only.
    let linker = app
        .scoped_key(Some(&[&tenant]), Some(vec!["console-links"]))
        .await;
    // Its link cannot grant what it lacks.
    let (status, res) = app
        .post(
            &format!("/v1/tenants/{tenant}/console-links"),
            &linker,
            json!({ "permissions": ["replay"] }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");

    let (client, csrf) = session(&app, &linker, &tenant, json!({})).await;
    let before = snapshot(&app).await;
    let forms: Vec<Form> = vec![
        (
            "/console/endpoints".into(),
            vec![("url", "http://127.0.0.1:9/evil")],
            "endpoints:write",
        ),
        (
            format!("/console/endpoints/{endpoint}/edit"),
            vec![("url", "http://127.0.0.1:9/evil")],
            "endpoints:write",
        ),
        (
            format!("/console/endpoints/{endpoint}/rotate"),
            vec![("grace", "0")],
            "endpoints:write",
        ),
        (
            format!("/console/endpoints/{endpoint}/test"),
            vec![],
            "endpoints:write",
        ),
        (
            format!("/console/endpoints/{endpoint}/state"),
            vec![("disabled", "true")],
            "endpoints:write",
        ),
        (
            format!("/console/endpoints/{endpoint}/recover"),
            vec![("since", "2020-01-01T00:00")],
            "replay",
        ),
        (
            format!("/console/deliveries/{delivery}/replay"),
            vec![],
            "replay",
        ),
    ];
    for (path, fields, needs) in &forms {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields.iter().copied());
        let (status, page) = post(&client, app.url(path), &form).await;
        assert_eq!(status, 403, "{path}: {page}");
        assert!(page.contains(needs), "{path} names `{needs}`: {page}");
    }
    for path in [
        "/console/endpoints/new".to_string(),
        format!("/console/endpoints/{endpoint}/edit"),
    ] {
        let res = client.get(app.url(&path)).send().await.expect("get");
        assert_eq!(res.status().as_u16(), 403, "{path}");
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "a refused form changed nothing"
    );
    assert_eq!(receiver.received().len(), 1, "no test event, no replay");

    // It reads everything, and its pages offer no action it may not take.
    let list = page_text(&client, app.url("/console/endpoints")).await;
    assert!(list.contains(&receiver.url) && !list.contains("add-endpoint"));
    let page = page_text(&client, app.url(&format!("/console/endpoints/{endpoint}"))).await;
    for hidden in ["id=\"edit\"", "id=\"rotate\"", "id=\"toggle\"", "/recover"] {
        assert!(
            !page.contains(hidden),
            "{hidden} shown to a read-only session"
        );
    }
    let page = page_text(&client, app.url(&format!("/console/deliveries/{delivery}"))).await;
    assert!(page.contains(&delivery) && !page.contains("id=\"replay\""));

    // A link narrowed to `replay` from a key holding everything: replay works,
    // endpoint changes do not.
    let (client, csrf) = session(&app, &key, &tenant, json!({ "permissions": ["replay"] })).await;
    let (status, _) = post(
        &client,
        app.url(&format!("/console/deliveries/{delivery}/replay")),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303, "replayed");
    receiver.wait_for(2).await;
    let (status, _) = post(
        &client,
        app.url("/console/endpoints"),
        &[("csrf", &csrf), ("url", "http://127.0.0.1:9/evil")],
    )
    .await;
    assert_eq!(status, 403);
    let page = page_text(&client, app.url(&format!("/console/deliveries/{delivery}"))).await;
    assert!(
        page.contains("id=\"replay\""),
        "the action it holds is shown"
    );
}

#[tokio::test]
async fn the_operator_lists_and_ends_sessions_and_a_deleted_tenants_sessions_end() {
    let app = TestApp::spawn().await;
    let (key, tenant) = app.tenant().await;
    // A link issued with the admin token holds every permission.
    let (client, _) = session(&app, ADMIN_TOKEN, &tenant, json!({})).await;
    let list = page_text(&client, app.url("/console/endpoints")).await;
    assert!(list.contains("/console/endpoints/new"), "{list}");
    let (status, open) = app
        .get(
            &format!("/v1/admin/console-sessions?tenant={tenant}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let sessions = open["data"].as_array().expect("data");
    assert_eq!(sessions.len(), 1, "{open}");
    assert_eq!(sessions[0]["issued_by"], "admin");
    assert_eq!(sessions[0]["kind"], "tenant");
    let id = sessions[0]["id"].as_str().expect("id").to_string();
    // A producer key cannot list or end sessions.
    let (status, _) = app.get("/v1/admin/console-sessions", &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = app
        .delete(&format!("/v1/admin/console-sessions/{id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let res = client
        .get(app.url("/console/endpoints"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 401, "ended at once");
    let (status, _) = app
        .delete(&format!("/v1/admin/console-sessions/{id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, log) = app
        .get("/v1/admin/audit?action=console.session_ended", ADMIN_TOKEN)
        .await;
    assert_eq!(log["data"][0]["target_id"], id.as_str(), "{log}");

    // The operator console lists open sessions and ends one with a button.
    let (client, _) = session(&app, &key, &tenant, json!({})).await;
    let operator = browser();
    let res = crate::console::operator_login(&app, &operator).await;
    assert_eq!(res.status().as_u16(), 303);
    let page = page_text(&operator, app.url("/console/admin/sessions")).await;
    let (_, open) = app
        .get(
            &format!("/v1/admin/console-sessions?tenant={tenant}"),
            ADMIN_TOKEN,
        )
        .await;
    let id = open["data"][0]["id"].as_str().expect("id").to_string();
    assert!(page.contains(&id), "{page}");
    let (status, _) = post(
        &operator,
        app.url(&format!("/console/admin/sessions/{id}/end")),
        &[("csrf", &csrf_of(&page))],
    )
    .await;
    assert_eq!(status, 303);
    let res = client
        .get(app.url("/console/endpoints"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 401);

    // Deleting the tenant ends its sessions at once and refuses its writes.
    let (client, csrf) = session(&app, &key, &tenant, json!({})).await;
    let (status, res) = app.delete(&format!("/v1/tenants/{tenant}"), &key).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{res}");
    let res = client
        .get(app.url("/console/endpoints"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 401);
    let (status, _) = post(
        &client,
        app.url("/console/endpoints"),
        &[("csrf", &csrf), ("url", "http://127.0.0.1:9/late")],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            &key,
            json!({ "url": "http://127.0.0.1:9/late" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM endpoints WHERE url = 'http://127.0.0.1:9/late'")
            .fetch_one(app.store.pool())
            .await
            .expect("count");
    assert_eq!(left, 0);
}
