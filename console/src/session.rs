//! Console sessions: a tenant's (opened by a console link) or an operator's
//! (opened with the admin token), in one signed, expiring, HttpOnly SameSite=Lax
//! cookie; the two never stand in for each other. Extractors for handlers, and
//! `Posted`, which checks the CSRF token every form carries.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::state::ConsoleState;
use crate::view::{self, Nav};

pub(crate) const COOKIE: &str = "hookrelay_console";

/// How long a session lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);

/// Whose session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tenant,
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub kind: Kind,
    tenant: Option<Uuid>,
    exp: i64,
    nonce: String,
    /// Which master key signed the cookie (its CSRF tokens use the same one).
    #[serde(skip)]
    signed_by: Option<hookrelay_core::signed::KeyIndex>,
}

impl Claims {
    fn csrf(&self, state: &ConsoleState) -> String {
        let key = self
            .signed_by
            .unwrap_or(hookrelay_core::signed::KeyIndex::CURRENT);
        state.sessions.digest(key, &self.nonce)
    }
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

pub(crate) fn claims(state: &ConsoleState, headers: &HeaderMap) -> Option<Claims> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let token = cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)?
        .1;
    let (mut claims, key): (Claims, _) = state.sessions.verify_keyed(token)?;
    claims.signed_by = Some(key);
    (claims.exp > Utc::now().timestamp()).then_some(claims)
}

impl FromRequestParts<ConsoleState> for TenantSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        match claims(state, &parts.headers) {
            Some(
                c @ Claims {
                    kind: Kind::Tenant,
                    tenant: Some(tenant),
                    ..
                },
            ) => Ok(Self {
                tenant,
                csrf: c.csrf(state),
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
            Some(c) if c.kind == Kind::Admin => Ok(Self {
                csrf: c.csrf(state),
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

/// Starts a session: sets its cookie and goes to `to`.
pub(crate) fn start(state: &ConsoleState, kind: Kind, tenant: Option<Uuid>, to: &str) -> Response {
    let claims = Claims {
        kind,
        tenant,
        exp: (Utc::now() + SESSION_TTL).timestamp(),
        nonce: Uuid::new_v4().simple().to_string(),
        signed_by: None,
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={}{}",
        state.sessions.sign(&claims),
        SESSION_TTL.num_seconds(),
        secure(state)
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

/// `; Secure` when the console is served over HTTPS.
pub(crate) fn secure(state: &ConsoleState) -> &'static str {
    if state.secure_cookies { "; Secure" } else { "" }
}
