//! hookrelay-console: the web console, server-rendered with Leptos on axum and
//! mounted at `/console`. Customers arrive through a short-lived link scoped to one
//! tenant; operators log in with the admin token. `pages/` holds the handlers,
//! `components/` what several pages draw, `view` the page shell. Every page works without
//! JavaScript (forms for every action); a small script adds copy buttons, and where
//! the islands' wasm build is served, progress and new attempts update live.
#![forbid(unsafe_code)]

mod assets;
mod components;
mod form;
mod page_errors;
mod pages;
mod pkg;
mod session;
mod state;
mod view;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};

pub use state::ConsoleState;

use pages::{
    accounts, audit, dead_letters, deliveries, endpoint_controls, endpoint_forms, endpoint_reach,
    endpoints, events, fleet, jobs, progress, sessions, sign_in,
};

/// Every console route, to be merged into the HTTP server's router.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(sign_in::home))
        .route(
            "/console/open",
            get(sign_in::confirm_link).post(sign_in::open_link),
        )
        .route(
            "/console/login",
            get(sign_in::login_form).post(sign_in::login),
        )
        .route("/console/logout", post(sign_in::logout))
        .route("/console/assets/console.css", get(assets::css))
        .route("/console/assets/console.js", get(assets::js))
        .route("/console/assets/hydrate.js", get(assets::hydrate))
        .route("/console/pkg/console.js", get(pkg::js))
        .route("/console/pkg/console_bg.wasm", get(pkg::wasm))
        .route(
            "/console/endpoints",
            get(endpoints::endpoints).post(endpoint_forms::create),
        )
        .route("/console/endpoints/new", get(endpoint_forms::new_form))
        .route("/console/endpoints/{id}", get(endpoints::endpoint))
        .route(
            "/console/endpoints/{id}/edit",
            get(endpoint_forms::edit_form).post(endpoint_forms::update),
        )
        .route(
            "/console/endpoints/{id}/rotate",
            post(endpoint_forms::rotate),
        )
        .route("/console/endpoints/{id}/test", post(endpoint_forms::test))
        .route("/console/endpoints/{id}/recover", post(endpoints::recover))
        .route("/console/endpoints/{id}/state", post(endpoints::set_state))
        .route(
            "/console/endpoints/{id}/auth",
            post(endpoint_reach::set_auth),
        )
        .route("/console/endpoints/{id}/tls", post(endpoint_reach::set_tls))
        .route(
            "/console/endpoints/{id}/pause",
            post(endpoint_controls::pause),
        )
        .route(
            "/console/endpoints/{id}/cancel",
            post(endpoint_controls::cancel_backlog),
        )
        .route(
            "/console/endpoints/{id}/filter-test",
            post(endpoint_controls::test_filter),
        )
        .route(
            "/console/deliveries/{id}/cancel",
            post(endpoint_controls::cancel_delivery),
        )
        .route("/console/events", get(events::events))
        .route("/console/events/{id}", get(events::event))
        .route("/console/deliveries", get(deliveries::deliveries))
        .route("/console/deliveries/{id}", get(deliveries::delivery))
        .route("/console/deliveries/{id}/progress", get(progress::delivery))
        .route("/console/deliveries/{id}/replay", post(deliveries::replay))
        .route("/console/jobs/{id}", get(jobs::tenant_job))
        .route("/console/jobs/{id}/progress", get(progress::tenant_job))
        .route("/console/admin/dead", get(dead_letters::dead))
        .route("/console/admin/dead/replay", post(dead_letters::replay))
        .route("/console/admin/dead/purge", post(dead_letters::purge))
        .route(
            "/console/admin/dead/replay-picked",
            post(dead_letters::replay_picked),
        )
        .route(
            "/console/admin/deliveries/{id}",
            get(dead_letters::delivery),
        )
        .route("/console/admin/fleet", get(fleet::fleet))
        .route("/console/admin/audit", get(audit::audit))
        .route(
            "/console/admin/tenants",
            get(accounts::tenants).post(accounts::create_tenant),
        )
        .route(
            "/console/admin/api-keys",
            get(accounts::api_keys).post(accounts::create_key),
        )
        .route(
            "/console/admin/api-keys/{id}/revoke",
            post(accounts::revoke_key),
        )
        .route("/console/admin/sessions", get(sessions::sessions))
        .route("/console/admin/sessions/{id}/end", post(sessions::end))
        .route("/console/admin/jobs/{id}", get(jobs::admin_job))
        .route(
            "/console/admin/jobs/{id}/progress",
            get(progress::admin_job),
        )
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(state)
}

/// Content-Security-Policy and friends on every console response.
async fn secure_headers(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
             connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
