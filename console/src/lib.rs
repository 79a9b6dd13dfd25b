//! hookrelay-console: the web console, server-rendered with Leptos on axum and
//! mounted at `/console`. Customers arrive through a short-lived link scoped to one
//! tenant; operators log in with the admin token. Every page works without
//! JavaScript (forms for every action); a small script adds copy buttons, and where
//! the islands' wasm build is served, progress and new attempts update live.
#![forbid(unsafe_code)]

mod accounts;
mod assets;
mod customer;
mod endpoint_forms;
mod events;
mod filters;
mod found;
mod operator;
mod pkg;
mod progress;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use hookrelay_core::crypto::Cipher;
use hookrelay_core::queue::{Publisher, Topology};
use hookrelay_core::signed::Signer;
use hookrelay_core::target::TargetPolicy;
use hookrelay_core::{Config, Store};
use uuid::Uuid;

pub use session::LinkClaims;

/// How long a console link may be opened, and how long a session lasts.
pub const LINK_TTL: chrono::Duration = chrono::Duration::minutes(15);
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);

#[derive(Clone)]
pub struct ConsoleState(Arc<Inner>);

/// Called with the hash of an API key revoked from the console, so a gateway in the
/// same process stops accepting it at once.
pub type KeyRevoked = Arc<dyn Fn(&[u8]) + Send + Sync>;

pub struct Inner {
    pub store: Store,
    pub links: Signer,
    pub sessions: Signer,
    pub admin_token: Option<String>,
    pub amqp_url: String,
    pub topology: Topology,
    /// Sends replays and test events at once: the gateway's own when the console is
    /// mounted in it, else one that connects on first use.
    pub publisher: Arc<Publisher>,
    pub cipher: Cipher,
    pub targets: TargetPolicy,
    pub max_endpoint_timeout: std::time::Duration,
    pub key_revoked: Option<KeyRevoked>,
    /// Cookies only over HTTPS: set when the public URL is `https`.
    pub secure_cookies: bool,
    /// The islands' wasm build, when there is one.
    pub pkg: Option<Arc<pkg::Pkg>>,
}

impl std::ops::Deref for ConsoleState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What a gateway in the same process lends the console.
pub struct Host {
    pub publisher: Arc<Publisher>,
    pub key_revoked: KeyRevoked,
}

impl ConsoleState {
    /// The console on its own (`hookrelay console`), or mounted in a gateway (`host`).
    pub fn new(config: &Config, store: Store, host: Option<Host>) -> Self {
        let topology = config.topology();
        let (publisher, key_revoked) = match host {
            Some(h) => (h.publisher, Some(h.key_revoked)),
            None => (
                Arc::new(Publisher::new(
                    config.amqp_url.expose().clone(),
                    "console",
                    topology.clone(),
                )),
                None,
            ),
        };
        Self(Arc::new(Inner {
            store,
            links: link_signer(config),
            sessions: Signer::new(config.encryption_key.expose(), "hookrelay console sessions"),
            admin_token: config.admin_token.as_ref().map(|t| t.expose().clone()),
            amqp_url: config.amqp_url.expose().clone(),
            publisher,
            topology,
            cipher: Cipher::new(config.encryption_key.expose()),
            targets: config.target_policy(),
            max_endpoint_timeout: config.max_endpoint_timeout,
            key_revoked,
            pkg: pkg::Pkg::load(&config.console_pkg),
            secure_cookies: config
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
        }))
    }
}

pub fn link_signer(config: &Config) -> Signer {
    Signer::new(config.encryption_key.expose(), "hookrelay console links")
}

/// A console link for one tenant: the path to open (with its token) and its expiry.
/// Each link opens one session only.
pub fn issue_link(signer: &Signer, tenant: Uuid) -> (String, DateTime<Utc>) {
    let expires_at = Utc::now() + LINK_TTL;
    let token = signer.sign(&LinkClaims {
        id: Uuid::new_v4(),
        tenant,
        exp: expires_at.timestamp(),
    });
    (format!("/console/open?token={token}"), expires_at)
}

/// Every console route, to be merged into the HTTP server's router.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(session::home))
        .route(
            "/console/open",
            get(session::confirm_link).post(session::open_link),
        )
        .route(
            "/console/login",
            get(session::login_form).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route("/console/assets/console.css", get(assets::css))
        .route("/console/assets/console.js", get(assets::js))
        .route("/console/assets/hydrate.js", get(assets::hydrate))
        .route("/console/pkg/console.js", get(pkg::js))
        .route("/console/pkg/console_bg.wasm", get(pkg::wasm))
        .route(
            "/console/endpoints",
            get(customer::endpoints).post(endpoint_forms::create),
        )
        .route("/console/endpoints/new", get(endpoint_forms::new_form))
        .route("/console/endpoints/{id}", get(customer::endpoint))
        .route(
            "/console/endpoints/{id}/edit",
            get(endpoint_forms::edit_form).post(endpoint_forms::update),
        )
        .route(
            "/console/endpoints/{id}/rotate",
            post(endpoint_forms::rotate),
        )
        .route("/console/endpoints/{id}/test", post(endpoint_forms::test))
        .route("/console/endpoints/{id}/recover", post(customer::recover))
        .route("/console/endpoints/{id}/state", post(customer::set_state))
        .route("/console/events", get(events::events))
        .route("/console/events/{id}", get(events::event))
        .route("/console/deliveries", get(customer::deliveries))
        .route("/console/deliveries/{id}", get(customer::delivery))
        .route("/console/deliveries/{id}/progress", get(progress::delivery))
        .route("/console/deliveries/{id}/replay", post(customer::replay))
        .route("/console/jobs/{id}", get(customer::job))
        .route("/console/jobs/{id}/progress", get(progress::tenant_job))
        .route("/console/admin/dead", get(operator::dead))
        .route("/console/admin/dead/replay", post(operator::replay))
        .route("/console/admin/dead/purge", post(operator::purge))
        .route(
            "/console/admin/dead/replay-picked",
            post(operator::replay_picked),
        )
        .route("/console/admin/deliveries/{id}", get(operator::delivery))
        .route("/console/admin/fleet", get(operator::fleet))
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
        .route("/console/admin/jobs/{id}", get(operator::job))
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
