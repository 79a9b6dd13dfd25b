//! Console sessions: a tenant's (opened by a console link) or an operator's
//! (opened with the admin token or an operator's token), named by a signed,
//! expiring, HttpOnly SameSite=Lax cookie and kept server-side, so signing out,
//! revoking the issuing key, disabling the operator or changing the admin token
//! end them at once; the two kinds never stand in for each other. A tenant's
//! session holds the permissions of its link and every action checks them
//! (`TenantSession::require`), with the same `Permission` values as the API.
//! Extractors for handlers, and `Posted`, which checks the CSRF token every form
//! carries.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use hookrelay_core::access::{Permission, Permissions};
use hookrelay_core::audit::{Actor, ActorKind};
use hookrelay_core::console_link::Issuer;
use hookrelay_core::store::{NewSession, OpenSession};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::state::ConsoleState;
use crate::view::{self, Nav};

pub(crate) const COOKIE: &str = "hookrelay_console";

/// How long a session lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);

/// Whose session it is: the same names in the session token and the stored row.
pub use hookrelay_core::states::SessionKind as Kind;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub kind: Kind,
    tenant: Option<Uuid>,
    exp: i64,
    nonce: String,
    /// The server-side session (cookies without one are from before sessions
    /// were stored, and no longer open anything).
    #[serde(default)]
    sid: Option<Uuid>,
    /// Which master key signed the cookie (its CSRF tokens use the same one).
    #[serde(skip)]
    signed_by: Option<hookrelay_core::signed_token::KeyIndex>,
}

impl Claims {
    pub fn sid(&self) -> Option<Uuid> {
        self.sid
    }

    fn key(&self) -> hookrelay_core::signed_token::KeyIndex {
        self.signed_by
            .unwrap_or(hookrelay_core::signed_token::KeyIndex::CURRENT)
    }

    fn csrf(&self, state: &ConsoleState) -> String {
        state.sessions.digest(self.key(), &self.nonce)
    }
}

/// What a session row keeps of the admin token that opened it, under the master
/// key that signs the session: a new admin token no longer matches.
fn admin_digest(
    state: &ConsoleState,
    key: hookrelay_core::signed_token::KeyIndex,
) -> Option<Vec<u8>> {
    let token = state.admin_token.as_ref()?;
    Some(
        state
            .sessions
            .digest(key, &format!("admin token {}", token.expose()))
            .into_bytes(),
    )
}

/// A customer's session, limited to one tenant.
pub struct TenantSession {
    pub tenant: Uuid,
    pub csrf: String,
    /// Who acts through it, for the audit log.
    pub actor: Actor,
    /// What it may do.
    pub permissions: Permissions,
}

impl TenantSession {
    /// Whether the session may take actions that need `p` (pages hide the rest).
    pub fn may(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    /// Refuses (`403`, nothing changed) an action the session lacks `p` for.
    // The error is the page to answer with.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, p: Permission) -> Result<(), Response> {
        if self.may(p) {
            Ok(())
        } else {
            Err(view::message(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!(
                    "This console session was opened without the `{}` permission. Ask for a link that grants it.",
                    p.as_str()
                ),
                Nav::Tenant,
            ))
        }
    }
}

/// An operator's session.
pub struct AdminSession {
    pub csrf: String,
    pub actor: Actor,
}

/// The cookie's session, if it is still open server-side.
async fn open(state: &ConsoleState, parts: &Parts) -> Option<(Claims, OpenSession)> {
    let claims = claims(state, &parts.headers)?;
    let sid = claims.sid?;
    let digest = admin_digest(state, claims.key());
    match state.store.open_session(sid, digest.as_deref()).await {
        Ok(Some(open)) => Some((claims, open)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a console session");
            None
        }
    }
}

fn actor(parts: &Parts, open: &OpenSession) -> Actor {
    let (kind, id, name) = match (open.kind, open.operator_id) {
        (Kind::Admin, Some(op)) => (
            ActorKind::Operator,
            Some(op),
            open.holder.clone().unwrap_or_default(),
        ),
        (Kind::Admin, None) => (
            ActorKind::Admin,
            Some(open.id),
            "admin token (console)".to_string(),
        ),
        _ => (
            ActorKind::Console,
            Some(open.id),
            match &open.holder {
                Some(key) => format!("tenant console (link from key {key:?})"),
                None => "tenant console".to_string(),
            },
        ),
    };
    Actor {
        kind,
        id,
        name,
        address: client_address(parts),
        request_id: None,
    }
}

/// The client's address, when the server recorded it.
pub(crate) fn client_address(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
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
        match open(state, parts).await {
            Some((c @ Claims { kind: Kind::Tenant, tenant: Some(tenant), .. }, s))
                if s.kind == Kind::Tenant && s.tenant_id == Some(tenant) =>
            {
                Ok(Self {
                    tenant,
                    csrf: c.csrf(state),
                    actor: actor(parts, &s),
                    permissions: s.permissions(),
                })
            }
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
        match open(state, parts).await {
            Some((c, s)) if c.kind == Kind::Admin && s.kind == Kind::Admin => {
                Ok(Self { csrf: c.csrf(state), actor: actor(parts, &s) })
            }
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
        Ok(Self { session, form: posted.form })
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

/// Who opens a session.
pub(crate) enum Opener {
    /// A console link for this tenant, with its issuer and permissions.
    Link {
        tenant: Uuid,
        issuer: Issuer,
        permissions: Permissions,
    },
    AdminToken,
    Operator(Uuid),
}

/// Starts a session: stores it, sets its cookie and goes to `to`.
pub(crate) async fn start(state: &ConsoleState, opener: Opener, to: &str) -> Response {
    let sid = hookrelay_core::ids::new_id();
    let expires_at = Utc::now() + SESSION_TTL;
    let (kind, tenant) = match opener {
        Opener::Link { tenant, .. } => (Kind::Tenant, Some(tenant)),
        _ => (Kind::Admin, None),
    };
    let row = NewSession {
        id: sid,
        kind,
        tenant_id: tenant,
        api_key_id: match opener {
            Opener::Link { issuer: Issuer::ApiKey(key), .. } => Some(key),
            _ => None,
        },
        permissions: match opener {
            Opener::Link { permissions, .. } => Some(permissions),
            _ => None,
        },
        issued_by_operator: match opener {
            Opener::Link { issuer: Issuer::Operator(op), .. } => Some(op),
            _ => None,
        },
        issued_by_admin: matches!(opener, Opener::Link { issuer: Issuer::AdminToken, .. }),
        operator_id: match opener {
            Opener::Operator(id) => Some(id),
            _ => None,
        },
        admin_digest: match opener {
            Opener::AdminToken => {
                admin_digest(state, hookrelay_core::signed_token::KeyIndex::CURRENT)
            }
            _ => None,
        },
        expires_at,
    };
    if let Err(e) = state.store.start_session(&row).await {
        return crate::page_errors::unavailable(e, Nav::None);
    }
    let claims = Claims {
        kind,
        tenant,
        exp: expires_at.timestamp(),
        nonce: Uuid::new_v4().simple().to_string(),
        sid: Some(sid),
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
