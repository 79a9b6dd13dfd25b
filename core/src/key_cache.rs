//! The API keys a process knows to be valid, as hashes in memory: refreshed from
//! the database in the background, so producers keep authenticating while Postgres
//! is unreachable, and told at once about keys revoked in the same process.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Store;
use crate::store::StoreError;

/// How often the set is read again (new keys from other gateways, revocations).
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// Hashes of the keys known to be valid.
#[derive(Default)]
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
        Self::default()
    }

    fn known(&self) -> std::sync::RwLockWriteGuard<'_, Known> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, hash: [u8; 32]) {
        self.known().valid.insert(hash);
    }

    /// Forgets a revoked key at once (other processes forget it at their next refresh).
    pub fn remove(&self, hash: &[u8]) {
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            let mut known = self.known();
            known.valid.remove(&hash);
            known.revoked.insert(hash);
        }
    }

    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .valid
            .contains(hash)
    }

    /// Replaces the set with what the database holds.
    pub async fn reload(&self, store: &Store) -> Result<usize, StoreError> {
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
