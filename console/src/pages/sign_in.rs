//! Signing in and out: a console link opens a tenant's session (after a button,
//! so link scanners use nothing up), the admin token an operator's.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::session::{self, Kind, secure};
use crate::state::ConsoleState;
use crate::view::{self, Nav};

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

fn expired_link() -> Response {
    view::message(
        StatusCode::UNAUTHORIZED,
        "This link has expired",
        "Console links work for 15 minutes. Ask for a new one from your account.",
        Nav::None,
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
    view::open_link(&q.token)
}

/// The button's POST: uses the link up and starts the tenant's session.
pub async fn open_link(State(state): State<ConsoleState>, Form(q): Form<LinkQuery>) -> Response {
    let Some(link) = state.links.verify(&q.token) else {
        return expired_link();
    };
    let expires_at = DateTime::from_timestamp(link.exp, 0).unwrap_or_else(Utc::now);
    match state.store.use_console_link(link.id, expires_at).await {
        Ok(true) => session::start(
            &state,
            Kind::Tenant,
            Some(link.tenant),
            "/console/endpoints",
        ),
        Ok(false) => view::message(
            StatusCode::GONE,
            "This link was already used",
            "Each console link opens one session. Ask for a new one from your account.",
            Nav::None,
        ),
        Err(e) => crate::found::unavailable(e, Nav::None),
    }
}

pub async fn login_form() -> Response {
    view::login(None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(State(state): State<ConsoleState>, Form(form): Form<LoginForm>) -> Response {
    let ok = state
        .admin_token
        .as_ref()
        .is_some_and(|t| bool::from(t.expose().as_bytes().ct_eq(form.token.trim().as_bytes())));
    if ok {
        session::start(&state, Kind::Admin, None, "/console/admin/dead")
    } else {
        view::login(Some("That is not the admin token."))
    }
}

pub async fn logout(State(state): State<ConsoleState>) -> Response {
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
