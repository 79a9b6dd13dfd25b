//! Console sessions: a link opens a tenant session, the admin token an operator
//! session. Both live in one signed, expiring, HttpOnly SameSite=Lax cookie and
//! never stand in for each other. Every form carries a CSRF token bound to the
//! session.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::view::{self, Nav};
use crate::{ConsoleState, SESSION_TTL};

const COOKIE: &str = "hookrelay_console";

/// What a console link grants: one session for one tenant, if opened before `exp`
/// (unix seconds). `id` makes it single-use.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkClaims {
    pub id: Uuid,
    pub tenant: Uuid,
    pub exp: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    /// `tenant` or `admin`.
    kind: String,
    tenant: Option<Uuid>,
    exp: i64,
    nonce: String,
}

/// A customer's session, limited to one tenant.
pub struct TenantSession {
    pub tenant: Uuid,
    pub csrf: String,
}

/// An operator's session.
pub struct AdminSession {
    pub csrf: String,
}

fn claims(state: &ConsoleState, headers: &HeaderMap) -> Option<Claims> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let token = cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)?
        .1;
    let claims: Claims = state.sessions.verify(token)?;
    (claims.exp > Utc::now().timestamp()).then_some(claims)
}

impl FromRequestParts<ConsoleState> for TenantSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        match claims(state, &parts.headers) {
            Some(Claims {
                kind,
                tenant: Some(tenant),
                nonce,
                ..
            }) if kind == "tenant" => Ok(Self {
                tenant,
                csrf: state.sessions.digest(&nonce),
            }),
            _ => Err(view::message(
                StatusCode::UNAUTHORIZED,
                "Session expired",
                "Open a new console link from your account to see your webhooks.",
                Nav::None,
            )),
        }
    }
}

impl FromRequestParts<ConsoleState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        match claims(state, &parts.headers) {
            Some(c) if c.kind == "admin" => Ok(Self {
                csrf: state.sessions.digest(&c.nonce),
            }),
            _ => Err(Redirect::to("/console/login").into_response()),
        }
    }
}

/// What a session gives a form: the CSRF token its forms must carry.
pub trait Session: FromRequestParts<ConsoleState, Rejection = Response> {
    fn csrf(&self) -> &str;
}

impl Session for TenantSession {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl Session for AdminSession {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form posted by a signed-in user: the session, and the form's fields once its
/// CSRF token proved it came from a page of this session. `T` holds the other fields.
pub struct Posted<S, T> {
    pub session: S,
    pub form: T,
}

/// A form with no fields but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct WithCsrf<T> {
    csrf: String,
    #[serde(flatten)]
    form: T,
}

impl<S: Session + Send, T: DeserializeOwned + Send> FromRequest<ConsoleState> for Posted<S, T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &ConsoleState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = S::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let Form(posted) = Form::<WithCsrf<T>>::from_request(req, state)
            .await
            .map_err(|e| {
                view::message(
                    StatusCode::BAD_REQUEST,
                    "Check the form",
                    &e.body_text(),
                    Nav::None,
                )
            })?;
        check_csrf(session.csrf(), &posted.csrf)?;
        Ok(Self {
            session,
            form: posted.form,
        })
    }
}

/// Refuses a form whose CSRF token does not belong to the session.
// The error is the page to answer with; it is built once per refused form.
#[allow(clippy::result_large_err)]
pub fn check_csrf(expected: &str, given: &str) -> Result<(), Response> {
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(view::message(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not issued for your session. Go back, reload the page and try again.",
            Nav::None,
        ))
    }
}

fn start(state: &ConsoleState, kind: &str, tenant: Option<Uuid>, to: &str) -> Response {
    let claims = Claims {
        kind: kind.into(),
        tenant,
        exp: (Utc::now() + SESSION_TTL).timestamp(),
        nonce: Uuid::new_v4().simple().to_string(),
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={}{}",
        state.sessions.sign(&claims),
        SESSION_TTL.num_seconds(),
        secure(state)
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

pub async fn home(State(state): State<ConsoleState>, headers: HeaderMap) -> Redirect {
    match claims(&state, &headers) {
        Some(c) if c.kind == "tenant" => Redirect::to("/console/endpoints"),
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

fn valid_link(state: &ConsoleState, token: &str) -> Option<LinkClaims> {
    state
        .links
        .verify::<LinkClaims>(token)
        .filter(|link| link.exp > Utc::now().timestamp())
}

/// Opening a link only shows a button: link scanners and chat previews fetch links
/// with GET, and must not use up the one session a link opens.
pub async fn confirm_link(
    State(state): State<ConsoleState>,
    Query(q): Query<LinkQuery>,
) -> Response {
    if valid_link(&state, &q.token).is_none() {
        return expired_link();
    }
    view::open_link(&q.token)
}

/// The button's POST: uses the link up and starts the tenant's session.
pub async fn open_link(State(state): State<ConsoleState>, Form(q): Form<LinkQuery>) -> Response {
    let Some(link) = valid_link(&state, &q.token) else {
        return expired_link();
    };
    let expires_at = DateTime::from_timestamp(link.exp, 0).unwrap_or_else(Utc::now);
    match state.store.use_console_link(link.id, expires_at).await {
        Ok(true) => start(&state, "tenant", Some(link.tenant), "/console/endpoints"),
        Ok(false) => view::message(
            StatusCode::GONE,
            "This link was already used",
            "Each console link opens one session. Ask for a new one from your account.",
            Nav::None,
        ),
        Err(e) => crate::found::unavailable(e, Nav::None),
    }
}

/// `; Secure` when the console is served over HTTPS.
fn secure(state: &ConsoleState) -> &'static str {
    if state.secure_cookies { "; Secure" } else { "" }
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
        .as_deref()
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(form.token.trim().as_bytes())));
    if ok {
        start(&state, "admin", None, "/console/admin/dead")
    } else {
        view::login(Some("That is not the admin token."))
    }
}

pub async fn logout(State(state): State<ConsoleState>) -> Response {
    let cookie = format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure(&state)
    );
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/login"),
    )
        .into_response()
}
