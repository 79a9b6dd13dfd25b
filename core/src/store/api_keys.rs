//! Producer API keys, stored only as SHA-256 hashes.

use uuid::Uuid;

use super::{Result, Store, StoreError};

impl Store {
    pub async fn insert_api_key(&self, id: Uuid, name: &str, key_hash: &[u8; 32]) -> Result<()> {
        sqlx::query("INSERT INTO api_keys (id, name, key_hash) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(key_hash.as_slice())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Every usable key as (hash, id), to fill the gateway's in-memory cache.
    pub async fn active_api_keys(&self) -> Result<Vec<(Vec<u8>, Uuid)>> {
        Ok(
            sqlx::query_as("SELECT key_hash, id FROM api_keys WHERE revoked_at IS NULL")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn find_api_key(&self, key_hash: &[u8; 32]) -> Result<Option<Uuid>> {
        Ok(
            sqlx::query_scalar(
                "SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            )
            .bind(key_hash.as_slice())
            .fetch_optional(&self.pool)
            .await?,
        )
    }
}
