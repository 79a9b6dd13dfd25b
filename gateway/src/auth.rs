//! Authentication and access: the operator (the admin token or a named operator's
//! `hro_…` token) and producers' API keys, all sent as `Authorization: Bearer …`.
//! Keys are checked against the in-memory `KeyCache`, so a key keeps working, and
//! stays confined to its tenants and permissions, while Postgres is unreachable.
//! Out of a key's scope a tenant is `404`; in scope without the permission, `403`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use hookrelay_core::access::{Grant, Permission, Permissions};
use hookrelay_core::audit::{Actor, ActorKind};
use hookrelay_core::crypto::{KEY_PREFIX, hash_api_key};
use hookrelay_core::model::Tenant;
use hookrelay_core::store::OPERATOR_TOKEN_PREFIX;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::request_id::RequestId;
use crate::state::AppState;

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <key> header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <key>"))
}

fn is_admin(state: &AppState, token: &str) -> bool {
    match &state.config.security.admin_token {
        // Compare fixed-size digests in constant time: no length or prefix leaks.
        Some(admin) => bool::from(hash_api_key(admin.expose()).ct_eq(&hash_api_key(token))),
        None => false,
    }
}

/// The client's address, when the server recorded it (in-process tests have none).
pub fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn refused(wait: std::time::Duration) -> ApiError {
    ApiError::rate_limited(
        "too many failed authentications from this address; retry later",
        wait,
    )
}

/// Who is calling: the operator (`grant` is `None`) or a producer's key.
pub struct Caller {
    pub actor: Actor,
    grant: Option<Arc<Grant>>,
}

impl Caller {
    pub fn is_operator(&self) -> bool {
        self.grant.is_none()
    }

    /// The tenants the caller is confined to; `None`: every tenant.
    pub fn scope(&self) -> Option<&[Uuid]> {
        self.grant.as_ref().and_then(|g| g.tenants.as_deref())
    }

    /// What the caller may do (the operator: everything).
    pub fn permissions(&self) -> Permissions {
        self.grant
            .as_ref()
            .map_or_else(Permissions::all, |g| g.permissions)
    }

    pub fn reaches(&self, tenant: Uuid) -> bool {
        self.grant.as_ref().is_none_or(|g| g.reaches(tenant))
    }

    /// Refuses (`403`) a key without this permission.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        match &self.grant {
            Some(g) if !g.allows(p) => Err(ApiError::forbidden(format!(
                "this API key lacks the `{}` permission",
                p.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses (`403`) a key confined to some tenants (creating tenants needs a key
    /// that reaches every tenant).
    pub fn require_global(&self, p: Permission) -> ApiResult<()> {
        self.require(p)?;
        match &self.grant {
            Some(g) if !g.is_global() => Err(ApiError::forbidden(format!(
                "`{}` here needs a key that reaches every tenant",
                p.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// The tenant the path names, if the caller reaches it (`404` otherwise, as
    /// for a tenant that does not exist) and holds `p` (`403` otherwise).
    pub async fn tenant(&self, state: &AppState, key: &str, p: Permission) -> ApiResult<Tenant> {
        let tenant = state.tenants.resolve(&state.store, key).await?;
        if !self.reaches(tenant.id) {
            return Err(ApiError::not_found("tenant"));
        }
        self.require(p)?;
        Ok(tenant)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let address = client_address(parts);
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        // No credentials at all is no guess: answered 401, never counted or held back.
        let token = bearer(parts)?;
        let hash = hash_api_key(token);
        // Only unknown credentials wait out an address's failures: a key, operator
        // or admin token known valid is never refused for what others sent.
        let cached = state.keys.get(&hash);
        let admin = cached.is_none() && is_admin(state, token);
        let known_good = cached.is_some() || admin || state.auth_failures.is_known_good(&hash);
        if !known_good {
            state.auth_failures.check(address).map_err(refused)?;
        }
        let failed = |e: ApiError| match state.auth_failures.failed(address) {
            Some(wait) => refused(wait),
            None => e,
        };
        match authenticate(state, token, hash, cached, admin).await {
            Ok(mut caller) => {
                caller.actor = caller.actor.from(address, request_id);
                Ok(caller)
            }
            Err(e) if e.code == crate::error::ErrorCode::Unauthorized => Err(failed(e)),
            Err(e) => Err(e),
        }
    }
}

/// Who `token` is. `cached` is the key cache's grant for it and `admin` whether it
/// is the admin token, both already looked up by the caller.
async fn authenticate(
    state: &AppState,
    token: &str,
    hash: [u8; 32],
    cached: Option<Arc<Grant>>,
    admin: bool,
) -> ApiResult<Caller> {
    let grant = match cached {
        Some(g) => Some(g),
        None if admin => {
            return Ok(Caller { actor: Actor::admin(), grant: None });
        }
        None if token.starts_with(OPERATOR_TOKEN_PREFIX) => {
            return operator(state, &hash).await;
        }
        None if !token.starts_with(KEY_PREFIX) || state.keys.recently_refused(&hash) => None,
        // Not cached: perhaps created through another gateway moments ago.
        None => {
            let seen = state.keys.revocations();
            match state.store.find_api_key(&hash).await? {
                Some(g) => Some(state.keys.insert(hash, g, seen)),
                None => {
                    state.keys.refuse(hash);
                    None
                }
            }
        }
    };
    let grant = grant.ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
    if grant.expired(Utc::now()) {
        return Err(ApiError::unauthorized("this API key has expired"));
    }
    Ok(Caller {
        actor: Actor {
            kind: ActorKind::ApiKey,
            id: Some(grant.key_id),
            name: grant.name.clone(),
            address: None,
            request_id: None,
        },
        grant: Some(grant),
    })
}

async fn operator(state: &AppState, hash: &[u8; 32]) -> ApiResult<Caller> {
    if state.keys.recently_refused(hash) {
        return Err(ApiError::unauthorized("invalid operator token"));
    }
    match state.store.find_operator(hash).await? {
        Some((id, name)) => {
            state.auth_failures.remember_good(*hash);
            Ok(Caller {
                actor: Actor {
                    kind: ActorKind::Operator,
                    id: Some(id),
                    name,
                    address: None,
                    request_id: None,
                },
                grant: None,
            })
        }
        None => {
            state.auth_failures.forget_good(hash);
            state.keys.refuse(*hash);
            Err(ApiError::unauthorized("invalid operator token"))
        }
    }
}

/// The operator, proven by the admin token or a named operator's token.
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_operator() {
            Ok(Admin(caller.actor))
        } else {
            Err(ApiError::unauthorized("admin token required"))
        }
    }
}
