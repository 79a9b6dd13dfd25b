//! Authentication: the operator's admin token and producers' API keys, both sent as
//! `Authorization: Bearer …`. Keys are checked against an in-memory set of hashes
//! that is refreshed in the background, so ingest keeps authenticating while
//! Postgres is unreachable.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hookrelay_core::Store;
use hookrelay_core::crypto::{KEY_PREFIX, hash_api_key};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::state::AppState;

const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// Hashes of the keys known to be valid.
pub struct KeyCache {
    state: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    valid: HashSet<[u8; 32]>,
    /// Revoked here since the last reload began: a reload that read the database
    /// before the revocation must not bring them back.
    revoked: HashSet<[u8; 32]>,
}

impl KeyCache {
    pub fn new() -> Self {
        Self {
            state: RwLock::new(Known::default()),
        }
    }

    fn known(&self) -> std::sync::RwLockWriteGuard<'_, Known> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, hash: [u8; 32]) {
        self.known().valid.insert(hash);
    }

    /// Forgets a revoked key at once (other gateways forget it at their next refresh).
    pub fn remove(&self, hash: &[u8]) {
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            let mut known = self.known();
            known.valid.remove(&hash);
            known.revoked.insert(hash);
        }
    }

    fn contains(&self, hash: &[u8; 32]) -> bool {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .valid
            .contains(hash)
    }

    /// Replaces the set with what the database holds.
    pub async fn reload(&self, store: &Store) -> Result<usize, hookrelay_core::store::StoreError> {
        self.known().revoked.clear();
        let rows = store.active_api_keys().await?;
        let mut known = self.known();
        let valid: HashSet<[u8; 32]> = rows
            .into_iter()
            .filter_map(|(h, _)| h.try_into().ok())
            .filter(|h| !known.revoked.contains(h))
            .collect();
        let n = valid.len();
        known.valid = valid;
        Ok(n)
    }

    /// Keeps the set fresh (new keys from other gateways, revocations).
    pub async fn refresh_loop(&self, store: Store, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(REFRESH_EVERY) => {}
            }
            if let Err(e) = self.reload(&store).await {
                tracing::warn!(error = %e, "cannot refresh API keys; keeping the cached ones");
            }
        }
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new()
    }
}

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
    match &state.config.admin_token {
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
