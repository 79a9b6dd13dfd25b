//! The console's page shell and the small pieces every page uses: status badges,
//! times shown both relative and absolute, copyable ids, pretty JSON.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::tachys::view::RenderHtml;

/// Which navigation the page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Tenant,
    Admin,
}

/// A full page, rendered in its own reactive owner (freed with the page). `refresh`
/// reloads it every so many seconds unless its islands update it live.
pub fn page(
    status: StatusCode,
    title: &str,
    nav: Nav,
    refresh: Option<u32>,
    body: AnyView,
) -> Response {
    let title = format!("{title} · hookrelay");
    let links = match nav {
        Nav::None => ().into_any(),
        Nav::Tenant => view! {
            <a href="/console/endpoints">"Endpoints"</a>
            <a href="/console/events">"Events"</a>
            <a href="/console/deliveries">"Deliveries"</a>
        }
        .into_any(),
        Nav::Admin => view! {
            <a href="/console/admin/dead">"Dead letters"</a>
            <a href="/console/admin/fleet">"Fleet"</a>
            <a href="/console/admin/tenants">"Tenants"</a>
            <a href="/console/admin/api-keys">"API keys"</a>
            <a href="/console/admin/audit">"Audit log"</a>
            <a href="/console/admin/sessions">"Sessions"</a>
            <a href="/docs">"API docs"</a>
        }
        .into_any(),
    };
    let scope = match nav {
        Nav::None => "",
        Nav::Tenant => "customer",
        Nav::Admin => "operator",
    };
    // With scripts on, `hydrate.js` either brings the page's islands to life or
    // reloads it every `data-refresh` seconds; with scripts off, the <noscript> does.
    let owner = Owner::new();
    let html = owner.with(|| view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                {refresh.map(|s| view! { <noscript><meta http-equiv="refresh" content=s.to_string()/></noscript> })}
                <title>{title}</title>
                <link rel="stylesheet" href="/console/assets/console.css"/>
                <script src="/console/assets/console.js" defer=true></script>
                <script type="module" src="/console/assets/hydrate.js"></script>
            </head>
            <body data-refresh=refresh.map(|s| s.to_string())>
                <header class="top">
                    <a class="brand" href="/console">"hookrelay"</a>
                    <span class="scope">{scope}</span>
                    <nav>{links}</nav>
                    {(nav != Nav::None).then(|| view! {
                        <form method="post" action="/console/logout" class="logout">
                            <button type="submit" class="link">"Sign out"</button>
                        </form>
                    })}
                </header>
                <main>{body}</main>
            </body>
        </html>
    }
    .to_html());
    drop(owner);
    (status, Html(format!("<!DOCTYPE html>\n{html}"))).into_response()
}

/// A page with one message: errors, expired links, empty results.
pub fn message(status: StatusCode, title: &str, text: &str, nav: Nav) -> Response {
    let (heading, text) = (title.to_string(), text.to_string());
    page(
        status,
        title,
        nav,
        None,
        view! {
            <section class="card message">
                <h1>{heading}</h1>
                <p>{text}</p>
            </section>
        }
        .into_any(),
    )
}

pub fn not_found(nav: Nav) -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here, or it is not yours to see.",
        nav,
    )
}

pub fn login(error: Option<&str>) -> Response {
    let error = error.map(str::to_string);
    page(
        if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK },
        "Operator sign in",
        Nav::None,
        None,
        view! {
            <section class="card narrow">
                <h1>"Operator sign in"</h1>
                <p class="muted">"Customers open the console through a link from their account; operators sign in with the admin token."</p>
                {error.map(|e| view! { <p class="error">{e}</p> })}
                <form method="post" action="/console/login" class="stack">
                    <label>"Admin token" <input type="password" name="token" autocomplete="current-password" required=true/></label>
                    <button type="submit" class="primary">"Sign in"</button>
                </form>
            </section>
        }
        .into_any(),
    )
}

/// The page a console link shows: one button that opens the session.
pub fn open_link(token: &str, csrf: &str) -> Response {
    let token = token.to_string();
    let csrf = csrf.to_string();
    page(
        StatusCode::OK,
        "Open the console",
        Nav::None,
        None,
        view! {
            <section class="card narrow">
                <h1>"Your webhooks"</h1>
                <p class="muted">"This link opens one console session, valid for 8 hours."</p>
                <form method="post" action="/console/open" class="stack">
                    <input type="hidden" name="token" value=token/>
                    <input type="hidden" name="csrf" value=csrf/>
                    <button type="submit" class="primary" id="open-console">"Open the console"</button>
                </form>
            </section>
        }
        .into_any(),
    )
}

/// "3 min ago" / "in 4 min".
pub fn ago(t: DateTime<Utc>) -> String {
    let secs = (Utc::now() - t).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let span = match n {
        0..=4 => return "just now".into(),
        5..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

pub fn when(t: DateTime<Utc>) -> AnyView {
    let abs = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    view! {
        <time datetime=t.to_rfc3339() title=abs.clone()>{ago(t)}</time>
        <span class="abs">{abs}</span>
    }
    .into_any()
}

pub fn maybe_when(t: Option<DateTime<Utc>>) -> AnyView {
    match t {
        Some(t) => when(t),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    }
}

pub fn badge(status: &str) -> AnyView {
    let class = format!("badge {status}");
    let text = status.replace('_', " ");
    view! { <span class=class>{text}</span> }.into_any()
}

/// An endpoint's state: enabled or disabled.
pub fn enabled_badge(disabled: bool) -> AnyView {
    if disabled {
        view! { <span class="badge dead">"disabled"</span> }.into_any()
    } else {
        view! { <span class="badge delivered">"enabled"</span> }.into_any()
    }
}

pub fn copy_id(id: String) -> AnyView {
    view! {
        <code class="id">{id.clone()}</code>
        <button type="button" class="copy" data-copy=id title="Copy">"copy"</button>
    }
    .into_any()
}

/// JSON pretty-printed when it is JSON, as is otherwise.
pub fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_string())
}

pub fn csrf_field(token: &str) -> AnyView {
    let token = token.to_string();
    view! { <input type="hidden" name="csrf" value=token/> }.into_any()
}

/// `2xx share` as a percentage, or a dash without traffic.
pub fn rate(ok: i64, total: i64) -> String {
    if total == 0 {
        "—".into()
    } else {
        format!("{:.1} %", ok as f64 * 100.0 / total as f64)
    }
}
