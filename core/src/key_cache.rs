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
    /// Revocations seen so far: a key read from the database before one of them
    /// must not be cached after it (it may be the key just revoked).
    revocations: u64,
}

impl KeyCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn known(&self) -> std::sync::RwLockWriteGuard<'_, Known> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The count of revocations so far; read it before looking a key up in the
    /// database and hand it to `insert`.
    pub fn revocations(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .revocations
    }

    /// Knows this key from now on, unless a revocation came since `seen` (from
    /// `revocations()` before the key was read): the read may predate it, so the
    /// key is served this once and not cached. Returns its grant as held.
    pub fn insert(&self, hash: [u8; 32], grant: Grant, seen: u64) -> Arc<Grant> {
        let grant = Arc::new(grant);
        let mut known = self.known();
        if known.revocations == seen && !known.revoked.contains(&hash) {
            known.refused.remove(&hash);
            known.valid.insert(hash, grant.clone());
        }
        grant
    }

    /// Forgets a revoked key at once (other processes hear of it on the access
    /// fanout, or at their next refresh).
    pub fn remove(&self, hash: &[u8]) {
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            let mut known = self.known();
            known.valid.remove(&hash);
            known.revoked.insert(hash);
            known.revocations += 1;
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
        crate::refresh::every("API keys", REFRESH_EVERY, &cancel, || self.reload(&store)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            key_id: uuid::Uuid::new_v4(),
            name: String::new(),
            tenants: None,
            permissions: crate::access::Permissions::all(),
            expires_at: None,
        }
    }

    #[test]
    fn a_key_read_before_a_revocation_is_not_cached_after_it() {
        let cache = KeyCache::new();
        let hash = [3u8; 32];
        // A lookup starts, the key is revoked meanwhile, the lookup's answer arrives.
        let seen = cache.revocations();
        cache.remove(&hash);
        cache.insert(hash, grant(), seen);
        assert!(cache.get(&hash).is_none(), "the revoked key came back");
        // Another key, looked up after the revocation, is cached.
        let other = [4u8; 32];
        cache.insert(other, grant(), cache.revocations());
        assert!(cache.get(&other).is_some());
    }

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
