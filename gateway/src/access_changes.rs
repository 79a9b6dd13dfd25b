//! Applies the access changes every gateway hears on the broker's fanout (see
//! `hookrelay_core::queue::access`) to this gateway's key and tenant caches: a
//! revoked key is refused, a deleted tenant not found, new quotas applied, without
//! a query when the change needs none, so it holds while PostgreSQL is away.

use hookrelay_core::queue::access::{AccessChange, AccessListener};

use crate::state::AppState;

pub struct Caches(pub AppState);

impl AccessListener for Caches {
    async fn reload(&self) {
        let state = &self.0;
        if let Err(e) = state.keys.reload(&state.store).await {
            tracing::warn!(error = %e, "cannot reload API keys after connecting; the periodic reload will");
        }
        if let Err(e) = state.tenants.preload(&state.store).await {
            tracing::warn!(error = %e, "cannot reload tenants after connecting; the periodic reload will");
        }
    }

    async fn apply(&self, change: AccessChange) {
        let state = &self.0;
        match change {
            AccessChange::KeyRevoked { .. } => {
                if let Some(hash) = change.revoked_hash() {
                    state.keys.remove(&hash);
                }
            }
            AccessChange::TenantDeleted { tenant } => state.tenants.remove(tenant),
            AccessChange::TenantChanged { tenant } => {
                match state.store.find_tenant(&tenant.to_string()).await {
                    Ok(Some(t)) => state.tenants.insert(&t),
                    Ok(None) => state.tenants.remove(tenant),
                    Err(e) => {
                        tracing::warn!(error = %e, %tenant, "cannot read a changed tenant; the periodic reload will");
                    }
                }
            }
        }
    }
}
