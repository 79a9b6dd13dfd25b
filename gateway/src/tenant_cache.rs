//! Resolves `{tenant}` path segments (an id or a uid) to tenants, from memory when
//! possible, so ingest for known tenants keeps working while Postgres is away. A
//! tenant deleted (here, or as another gateway announced) never comes back, even
//! from a read that began before the deletion.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use hookrelay_core::Store;
use hookrelay_core::model::Tenant;

use crate::error::ApiError;

#[derive(Default)]
pub struct TenantCache {
    by_key: RwLock<HashMap<String, Tenant>>,
    deleted: RwLock<HashSet<uuid::Uuid>>,
}

impl TenantCache {
    fn is_deleted(&self, id: uuid::Uuid) -> bool {
        self.deleted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    pub fn insert(&self, tenant: &Tenant) {
        if self.is_deleted(tenant.id) {
            return;
        }
        let mut map = self.by_key.write().unwrap_or_else(|p| p.into_inner());
        map.insert(tenant.id.to_string(), tenant.clone());
        if let Some(uid) = &tenant.uid {
            map.insert(uid.clone(), tenant.clone());
        }
    }

    /// Forgets a deleted tenant at once, for good (other gateways hear of it on
    /// the access fanout).
    pub fn remove(&self, tenant: uuid::Uuid) {
        self.deleted
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant);
        let mut map = self.by_key.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| t.id != tenant);
    }

    /// Loads every tenant (at start, then at each refresh, which also forgets
    /// deleted ones), so ingest works even if Postgres is down later.
    pub async fn preload(&self, store: &Store) -> Result<usize, hookrelay_core::store::StoreError> {
        let all = store.all_tenants().await?;
        let mut map = HashMap::with_capacity(all.len() * 2);
        let deleted = self
            .deleted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for t in all.iter().filter(|t| !deleted.contains(&t.id)) {
            map.insert(t.id.to_string(), t.clone());
            if let Some(uid) = &t.uid {
                map.insert(uid.clone(), t.clone());
            }
        }
        *self.by_key.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(all.len())
    }

    /// Reads every tenant again every `REFRESH_EVERY` (limits changed through
    /// another gateway) until `cancel` fires.
    pub async fn refresh_loop(&self, store: Store, cancel: tokio_util::sync::CancellationToken) {
        let every = hookrelay_core::key_cache::REFRESH_EVERY;
        hookrelay_core::refresh::every("tenants", every, &cancel, || self.preload(&store)).await;
    }

    pub async fn resolve(&self, store: &Store, key: &str) -> Result<Tenant, ApiError> {
        // No id or uid holds a control character (PostgreSQL text cannot hold NUL):
        // such a key names no tenant, without a lookup.
        if key.chars().any(char::is_control) {
            return Err(ApiError::not_found("tenant"));
        }
        let key = key.to_ascii_lowercase_if_uuid();
        if let Some(t) = self
            .by_key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(t.clone());
        }
        match store.find_tenant(&key).await? {
            Some(t) => {
                self.insert(&t);
                Ok(t)
            }
            None => Err(ApiError::not_found("tenant")),
        }
    }
}

trait UuidCase {
    fn to_ascii_lowercase_if_uuid(&self) -> String;
}

impl UuidCase for str {
    /// Ids print lower-case; accept upper-case ids too without touching uids.
    fn to_ascii_lowercase_if_uuid(&self) -> String {
        match uuid::Uuid::parse_str(self) {
            Ok(id) => id.to_string(),
            Err(_) => self.to_string(),
        }
    }
}
