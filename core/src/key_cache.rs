//! The API keys a process knows, with what each may do, in memory: refreshed from
//! the database in the background, so producers keep authenticating (and keys stay
//! confined to their scope and permissions) while Postgres is unreachable; told at
//! once about keys created or revoked in the same process. Tokens found invalid
//! are remembered briefly, so a flood of bad keys costs no query each.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Store;
use crate::access::Grant;
use crate::store::StoreError;

/// How often the set is read again (new keys from other gateways, revocations).
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How long a token found invalid is refused without asking the database.
pub const REFUSED_FOR: Duration = Duration::from_secs(60);
/// At most this many refused tokens are remembered (then the oldest half is dropped).
const MAX_REFUSED: usize = 10_000;

/// The keys known to be valid, by hash.
#[derive(Default)]
pub struct KeyCache {
    state: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    valid: HashMap<[u8; 32], Arc<Grant>>,
    /// Revoked here since the last reload began: a reload that read the database
    /// before the revocation must not bring them back.
    revoked: HashSet<[u8; 32]>,
    /// Tokens the database did not know, and when it said so.
    refused: HashMap<[u8; 32], Instant>,
}

impl KeyCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn known(&self) -> std::sync::RwLockWriteGuard<'_, Known> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Knows this key from now on; returns its grant as held.
    pub fn insert(&self, hash: [u8; 32], grant: Grant) -> Arc<Grant> {
        let grant = Arc::new(grant);
        let mut known = self.known();
        known.refused.remove(&hash);
        known.valid.insert(hash, grant.clone());
        grant
    }

    /// Forgets a revoked key at once (other processes forget it at their next refresh).
    pub fn remove(&self, hash: &[u8]) {
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            let mut known = self.known();
            known.valid.remove(&hash);
            known.revoked.insert(hash);
        }
    }

    /// The key's grant, if it is known to be valid (expiry is the caller's check).
    pub fn get(&self, hash: &[u8; 32]) -> Option<Arc<Grant>> {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .valid
            .get(hash)
            .cloned()
    }

    /// Whether this token was found invalid within `REFUSED_FOR`.
    pub fn recently_refused(&self, hash: &[u8; 32]) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state
            .refused
            .get(hash)
            .is_some_and(|at| at.elapsed() < REFUSED_FOR)
    }

    /// Remembers that the database does not know this token.
    pub fn refuse(&self, hash: [u8; 32]) {
        let mut known = self.known();
        if known.refused.len() >= MAX_REFUSED {
            let now = Instant::now();
            known
                .refused
                .retain(|_, at| now.duration_since(*at) < REFUSED_FOR / 2);
            if known.refused.len() >= MAX_REFUSED {
                known.refused.clear();
            }
        }
        known.refused.insert(hash, Instant::now());
    }

    /// Replaces the set with what the database holds.
    pub async fn reload(&self, store: &Store) -> Result<usize, StoreError> {
        self.known().revoked.clear();
        let rows = store.active_api_keys().await?;
        let mut known = self.known();
        let valid: HashMap<[u8; 32], Arc<Grant>> = rows
            .into_iter()
            .filter(|(h, _)| !known.revoked.contains(h))
            .map(|(h, g)| (h, Arc::new(g)))
            .collect();
        let n = valid.len();
        known.refused.retain(|h, _| !valid.contains_key(h));
        known.valid = valid;
        Ok(n)
    }

    /// Keeps the set fresh until `cancel` fires.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_is_remembered_for_a_while_only() {
        let cache = KeyCache::new();
        let hash = [7u8; 32];
        assert!(!cache.recently_refused(&hash));
        cache.refuse(hash);
        assert!(cache.recently_refused(&hash));
        tokio::time::advance(REFUSED_FOR - Duration::from_secs(1)).await;
        assert!(cache.recently_refused(&hash));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!cache.recently_refused(&hash));
    }
}
