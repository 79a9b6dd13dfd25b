//! Authentication: the operator's admin token and producers' API keys, both sent as
//! `Authorization: Bearer …`. Keys are checked against the in-memory `KeyCache`, so
//! ingest keeps authenticating while Postgres is unreachable.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hookrelay_core::crypto::{KEY_PREFIX, hash_api_key};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
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

/// The operator, proven by the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if is_admin(state, token) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("admin token required"))
        }
    }
}

/// A producer (or the operator), proven by an API key.
pub struct Producer;

impl FromRequestParts<AppState> for Producer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let hash = hash_api_key(token);
        if state.keys.contains(&hash) || is_admin(state, token) {
            return Ok(Producer);
        }
        if !token.starts_with(KEY_PREFIX) {
            return Err(ApiError::unauthorized("invalid API key"));
        }
        // Not cached: perhaps created through another gateway moments ago.
        match state.store.find_api_key(&hash).await? {
            Some(_) => {
                state.keys.insert(hash);
                Ok(Producer)
            }
            None => Err(ApiError::unauthorized("invalid API key")),
        }
    }
}
