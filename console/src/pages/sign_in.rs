//! Signing in and out: a console link opens a tenant's session (after a button,
//! so link scanners use nothing up; the button's form is bound to a cookie set
//! with it, so another site cannot sign a visitor into its own tenant), the admin
//! token or an operator's token an operator's (rate limited per address).

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use hookrelay_core::audit::{Actor, ActorKind, action};
use hookrelay_core::crypto::hash_api_key;
use hookrelay_core::store::OPERATOR_TOKEN_PREFIX;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::session::{self, Kind, Opener, secure};
use crate::state::ConsoleState;
use crate::view::{self, Nav};

/// The cookie that binds the "Open the console" form to the browser it was shown in.
const OPEN_COOKIE: &str = "hookrelay_open";

pub async fn home(State(state): State<ConsoleState>, headers: HeaderMap) -> Redirect {
    match session::claims(&state, &headers) {
        Some(c) if c.kind == Kind::Tenant => Redirect::to("/console/endpoints"),
        Some(_) => Redirect::to("/console/admin/dead"),
        None => Redirect::to("/console/login"),
    }
}

#[derive(Deserialize)]
pub struct LinkQuery {
    token: String,
}

#[derive(Deserialize)]
pub struct OpenForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

fn expired_link() -> Response {
    view::message(
        StatusCode::UNAUTHORIZED,
        "This link has expired",
        "Console links work for 15 minutes. Ask for a new one from your account.",
        Nav::None,
    )
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(header::COOKIE)?
        .to_str()
        .ok()?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The form's token for this link in the browser holding `nonce`.
fn open_csrf(state: &ConsoleState, nonce: &str, token: &str) -> String {
    state.sessions.digest(
        hookrelay_core::signed_token::KeyIndex::CURRENT,
        &format!("open {nonce} {token}"),
    )
}

/// Opening a link only shows a button: link scanners and chat previews fetch links
/// with GET, and must not use up the one session a link opens.
pub async fn confirm_link(
    State(state): State<ConsoleState>,
    Query(q): Query<LinkQuery>,
) -> Response {
    if state.links.verify(&q.token).is_none() {
        return expired_link();
    }
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let csrf = open_csrf(&state, &nonce, &q.token);
    let set = format!(
        "{OPEN_COOKIE}={nonce}; Path=/console/open; HttpOnly; SameSite=Strict; Max-Age=900{}",
        secure(&state)
    );
    (
        [(header::SET_COOKIE, set)],
        view::open_link(&q.token, &csrf),
    )
        .into_response()
}

/// The button's POST: uses the link up and starts the tenant's session.
pub async fn open_link(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    parts: ClientAddress,
    Form(q): Form<OpenForm>,
) -> Response {
    let Some(link) = state.links.verify(&q.token) else {
        return expired_link();
    };
    let bound = cookie(&headers, OPEN_COOKIE).is_some_and(|nonce| {
        let expected = open_csrf(&state, nonce, &q.token);
        bool::from(expected.as_bytes().ct_eq(q.csrf.as_bytes()))
    });
    if !bound {
        return view::message(
            StatusCode::FORBIDDEN,
            "Open the link again",
            "This form was not shown in this browser. Open the console link you were given again.",
            Nav::None,
        );
    }
    let expires_at = DateTime::from_timestamp(link.exp, 0).unwrap_or_else(Utc::now);
    let by = Actor {
        kind: ActorKind::Console,
        id: Some(link.id),
        name: "console link".into(),
        address: parts.0,
        request_id: None,
    };
    match state
        .store
        .use_console_link(link.id, expires_at, link.tenant, &by)
        .await
    {
        Ok(true) => {
            let opener = Opener::Link {
                tenant: link.tenant,
                issuer: link.issuer(),
                permissions: link.permissions(),
            };
            session::start(&state, opener, "/console/endpoints").await
        }
        Ok(false) => view::message(
            StatusCode::GONE,
            "This link was already used",
            "Each console link opens one session. Ask for a new one from your account.",
            Nav::None,
        ),
        Err(e) => crate::page_errors::unavailable(e, Nav::None),
    }
}

/// The client's address, when the server recorded it.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(session::client_address(parts)))
    }
}

pub async fn login_form() -> Response {
    view::login(None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

fn too_many(wait: std::time::Duration) -> Response {
    let mut page = view::message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many failed sign-ins from this address. Wait a minute and try again.",
        Nav::None,
    );
    page.headers_mut().insert(
        header::RETRY_AFTER,
        axum::http::HeaderValue::from(wait.as_secs().max(1)),
    );
    page
}

pub async fn login(
    State(state): State<ConsoleState>,
    address: ClientAddress,
    Form(form): Form<LoginForm>,
) -> Response {
    let address = address.0;
    let token = form.token.trim();
    let hash = hash_api_key(token);
    let admin = state
        .admin_token
        .as_ref()
        .is_some_and(|t| bool::from(hash_api_key(t.expose()).ct_eq(&hash)));
    // Only unknown tokens wait out the address's failures (see `AuthFailures`).
    if !admin
        && !state.sign_in_failures.is_known_good(&hash)
        && let Err(wait) = state.sign_in_failures.check(address)
    {
        return too_many(wait);
    }
    let (opener, by) = if admin {
        (Opener::AdminToken, Actor::admin())
    } else if token.starts_with(OPERATOR_TOKEN_PREFIX) {
        match state.store.find_operator(&hash).await {
            Ok(Some((id, name))) => {
                state.sign_in_failures.remember_good(hash);
                (
                    Opener::Operator(id),
                    Actor {
                        kind: ActorKind::Operator,
                        id: Some(id),
                        name,
                        address: None,
                        request_id: None,
                    },
                )
            }
            Ok(None) => {
                state.sign_in_failures.forget_good(&hash);
                return refused(&state, address);
            }
            Err(e) => return crate::page_errors::unavailable(e, Nav::None),
        }
    } else {
        return refused(&state, address);
    };
    let by = by.from(address, None);
    let details = serde_json::json!({ "session": "operator" });
    if let Err(e) = state
        .store
        .record_audit(&by, action::CONSOLE_SIGN_IN, None, None, details)
        .await
    {
        return crate::page_errors::unavailable(e, Nav::None);
    }
    session::start(&state, opener, "/console/admin/dead").await
}

fn refused(state: &ConsoleState, address: Option<std::net::IpAddr>) -> Response {
    match state.sign_in_failures.failed(address) {
        Some(wait) => too_many(wait),
        None => view::login(Some(
            "That is neither the admin token nor an operator's token.",
        )),
    }
}

/// Ends the session server-side (so a copied cookie stops working too) and
/// forgets the cookie.
pub async fn logout(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    if let Some(sid) = session::claims(&state, &headers).and_then(|c| c.sid())
        && let Err(e) = state.store.end_session(sid).await
    {
        return crate::page_errors::unavailable(e, Nav::None);
    }
    let cookie = format!(
        "{}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0{}",
        session::COOKIE,
        secure(&state)
    );
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/login"),
    )
        .into_response()
}
