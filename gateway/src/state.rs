//! Shared state of the HTTP handlers.

use std::sync::Arc;

use hookrelay_core::crypto::Cipher;
use hookrelay_core::queue::Publisher;
use hookrelay_core::target::TargetPolicy;
use hookrelay_core::{Config, Store};

use crate::auth::KeyCache;
use crate::ingest::IngestBatcher;
use crate::tenant_cache::TenantCache;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub publisher: Arc<Publisher>,
    pub ingest: IngestBatcher,
    pub keys: KeyCache,
    pub tenants: TenantCache,
    pub cipher: Cipher,
    pub targets: TargetPolicy,
}

impl AppState {
    pub fn new(config: Config, store: Store, publisher: Arc<Publisher>) -> Self {
        let cipher = Cipher::new(config.encryption_key.expose());
        let ingest = IngestBatcher::spawn(publisher.clone(), config.ingest_buffer_bytes);
        let targets = config.target_policy();
        Self(Arc::new(Inner {
            config,
            store,
            publisher,
            ingest,
            keys: KeyCache::new(),
            tenants: TenantCache::default(),
            cipher,
            targets,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
