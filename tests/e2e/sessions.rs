//! Console sessions kept server-side, against real services: signing out,
//! revoking the key that issued the link and changing the admin token end them;
//! the link's form is bound to the browser that was shown it; operator sign-in
//! is rate limited; named operators act under their own name.

use axum::http::StatusCode;
use serde_json::json;

use crate::console::{browser, console_link, open_console, session_cookie};
use crate::helpers::{ADMIN_TOKEN, TestApp, run_to_end, spawn_ready, stderr};

/// The status of a console page fetched with only this cookie.
async fn status_with(base: &str, path: &str, cookie: &str) -> u16 {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

#[tokio::test]
async fn signing_out_and_revoking_the_issuing_key_end_tenant_sessions() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let (key, tenant) = app.tenant().await;
    let (status, issuer) = app
        .post(
            "/v1/api-keys",
            ADMIN_TOKEN,
            json!({ "tenants": [tenant], "permissions": ["console-links"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let issuer_token = issuer["key"].as_str().expect("key").to_string();

    // Signed out: the same cookie, replayed, opens nothing.
    let client = browser();
    let res = open_console(&client, &console_link(&app, &key, &tenant).await).await;
    let cookie = session_cookie(&res);
    assert_eq!(
        status_with(&app.base, "/console/endpoints", &cookie).await,
        200
    );
    let out = client
        .post(app.url("/console/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status().as_u16(), 303);
    assert_eq!(
        status_with(&app.base, "/console/endpoints", &cookie).await,
        401
    );

    // A session from the scoped key's link ends when that key is revoked.
    let res = open_console(
        &browser(),
        &console_link(&app, &issuer_token, &tenant).await,
    )
    .await;
    let cookie = session_cookie(&res);
    assert_eq!(
        status_with(&app.base, "/console/endpoints", &cookie).await,
        200
    );
    let (status, _) = app
        .delete(
            &format!("/v1/api-keys/{}", issuer["id"].as_str().expect("id")),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        status_with(&app.base, "/console/endpoints", &cookie).await,
        401
    );
    let (_, signed_in) = app
        .get("/v1/admin/audit?action=console.signed_in", ADMIN_TOKEN)
        .await;
    assert_eq!(
        signed_in["data"].as_array().map(Vec::len),
        Some(2),
        "{signed_in}"
    );
}

#[tokio::test]
async fn a_link_form_only_opens_in_the_browser_that_was_shown_it() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let (key, tenant) = app.tenant().await;
    let link = console_link(&app, &key, &tenant).await;
    // Another site's page posting its own link: no cookie of ours, no session.
    let token = link.split("token=").nth(1).expect("token");
    let forged = browser()
        .post(app.url("/console/open"))
        .form(&[("token", token), ("csrf", "forged")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.headers().get("set-cookie").is_none());
    // The real flow still works with the same (unused) link.
    let res = open_console(&browser(), &link).await;
    assert_eq!(res.status().as_u16(), 303);
}

#[tokio::test]
async fn a_new_admin_token_ends_operator_sessions_and_sign_in_is_rate_limited() {
    let app = TestApp::builder()
        .config(|c| c.quotas.auth_failures_per_minute = 2)
        .without_dispatcher()
        .start()
        .await;
    let client = browser();
    let res = crate::console::operator_login(&app, &client).await;
    assert_eq!(res.status().as_u16(), 303);
    let cookie = session_cookie(&res);
    // The same installation with the same token: the session holds.
    let mut same = app.hookrelay_command("gateway");
    same.env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN);
    let (_same, same_base) = spawn_ready(same).await;
    assert_eq!(
        status_with(&same_base, "/console/admin/dead", &cookie).await,
        200
    );
    // With a new admin token, it is over.
    let mut changed = app.hookrelay_command("gateway");
    changed.env("HOOKRELAY_ADMIN_TOKEN", "a-brand-new-admin-token-0001");
    let (_changed, changed_base) = spawn_ready(changed).await;
    assert_eq!(
        status_with(&changed_base, "/console/admin/dead", &cookie).await,
        303
    );

    for expected in [401, 401, 429] {
        let res = browser()
            .post(app.url("/console/login"))
            .form(&[("token", "not the token")])
            .send()
            .await
            .expect("login");
        assert_eq!(res.status().as_u16(), expected);
    }
    let res = browser()
        .post(app.url("/console/login"))
        .form(&[("token", "still not the token")])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status().as_u16(), 429, "the address waits");
    assert!(res.headers().contains_key("retry-after"));
    // The admin token is known to be good: others' failures do not lock it out.
    let res = browser()
        .post(app.url("/console/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status().as_u16(), 303, "the admin token still signs in");
}

#[tokio::test]
async fn named_operators_act_under_their_own_name() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let out = run_to_end(app.hookrelay_command("operators").args(["add", "alice"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("hro_"))
        .expect("a token")
        .to_string();
    let again = run_to_end(app.hookrelay_command("operators").args(["add", "alice"])).await;
    assert!(!again.status.success() && stderr(&again).contains("already exists"));

    let (_, tenant) = app.tenant().await;
    let (status, job) = app
        .post("/v1/admin/dead/replay", &token, json!({ "tenant": tenant }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let client = browser();
    let res = client
        .post(app.url("/console/login"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status().as_u16(), 303);
    let page = crate::console::page_text(&client, app.url("/console/admin/tenants")).await;
    let csrf = crate::console::csrf_of(&page);
    let res = client
        .post(app.url("/console/admin/tenants"))
        .form(&[("csrf", csrf.as_str()), ("name", "Made by alice")])
        .send()
        .await
        .expect("create");
    assert_eq!(res.status().as_u16(), 303);

    let (_, log) = app.get("/v1/admin/audit", ADMIN_TOKEN).await;
    let by_alice: Vec<&str> = log["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["actor_kind"] == "operator" && e["actor_name"] == "alice")
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        by_alice,
        vec![
            "tenant.created",
            "console.signed_in",
            "dead_letters.replayed"
        ],
        "{log}"
    );
    // The operator's console page shows the same entries, filtered.
    let page = crate::console::page_text(
        &client,
        app.url("/console/admin/audit?action=tenant.created"),
    )
    .await;
    assert!(
        page.contains("operator alice") && page.contains("tenant.created"),
        "{page}"
    );
    assert!(!page.contains("dead_letters.replayed"), "the filter holds");
    let (_, added) = app
        .get("/v1/admin/audit?action=operator.added", ADMIN_TOKEN)
        .await;
    assert_eq!(added["data"][0]["actor_name"], "hookrelay operators add");

    // Disabled: the token and the console session stop working at once.
    let (status, _) = app.get("/v1/admin/audit", &token).await;
    assert_eq!(status, StatusCode::OK);
    let out = run_to_end(
        app.hookrelay_command("operators")
            .args(["disable", "alice"]),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, res) = app.get("/v1/admin/audit", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{res}");
    let res = client
        .get(app.url("/console/admin/tenants"))
        .send()
        .await
        .expect("page");
    assert_eq!(res.status().as_u16(), 303, "sent back to sign in");
    let again = run_to_end(
        app.hookrelay_command("operators")
            .args(["disable", "alice"]),
    )
    .await;
    assert!(!again.status.success() && stderr(&again).contains("no operator named"));
    let list = run_to_end(app.hookrelay_command("operators").arg("list")).await;
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with("alice\t") && l.ends_with("disabled")),
        "{list}"
    );
    let (_, disabled) = app
        .get("/v1/admin/audit?action=operator.disabled", ADMIN_TOKEN)
        .await;
    let disabled = disabled["data"].as_array().expect("data");
    assert_eq!(disabled.len(), 1, "recorded once");
    assert_eq!(disabled[0]["actor_name"], "hookrelay operators disable");
}
