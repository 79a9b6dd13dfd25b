//! Shared state of the HTTP handlers.

use std::sync::Arc;

use hookrelay_core::actions::Actions;
use hookrelay_core::console_link::ConsoleLinks;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::key_cache::KeyCache;
use hookrelay_core::queue::Publisher;
use hookrelay_core::target_policy::TargetPolicy;
use hookrelay_core::{Config, Store};

use crate::ingest::IngestBatcher;
use crate::quota::IngestQuotas;
use crate::tenant_cache::TenantCache;
use hookrelay_core::auth_failures::AuthFailures;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub publisher: Arc<Publisher>,
    pub ingest: IngestBatcher,
    pub keys: Arc<KeyCache>,
    pub tenants: TenantCache,
    pub cipher: Cipher,
    pub targets: TargetPolicy,
    pub links: ConsoleLinks,
    pub actions: Actions,
    pub auth_failures: AuthFailures,
    pub quotas: IngestQuotas,
}

impl AppState {
    pub fn new(config: Config, store: Store, publisher: Arc<Publisher>) -> Self {
        let cipher = Cipher::with_keys(&config.security.master_keys());
        let ingest = IngestBatcher::spawn(
            publisher.clone(),
            config.http.ingest_buffer_bytes,
            config.quotas.priority_rate,
        );
        let targets = config.target_policy();
        let keys = Arc::new(KeyCache::new());
        let actions = Actions::configured(&config, store.clone(), publisher.clone(), keys.clone());
        Self(Arc::new(Inner {
            links: ConsoleLinks::new(&config.security.master_keys()),
            auth_failures: AuthFailures::new(config.quotas.auth_failures_per_minute),
            quotas: IngestQuotas::new(config.quotas.ingest_rate),
            config,
            store,
            publisher,
            ingest,
            keys,
            tenants: TenantCache::default(),
            cipher,
            targets,
            actions,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
