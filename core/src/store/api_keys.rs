//! Producer API keys, stored only as SHA-256 hashes (plus a short hint to tell them apart).

use uuid::Uuid;

use super::{Result, Store, StoreError};
use crate::crypto::{api_key_hint, generate_api_key, hash_api_key};
use crate::ids::new_id;
use crate::model::ApiKey;
use crate::rules::KeyName;

const COLUMNS: &str = "id, name, hint, created_at, revoked_at";

impl Store {
    /// Creates a key; returns it as listed, the key itself (to be shown once) and its hash.
    pub async fn create_api_key(&self, name: &KeyName) -> Result<(ApiKey, String, [u8; 32])> {
        let key = generate_api_key();
        let hash = hash_api_key(&key);
        let row: ApiKey = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_keys (id, name, key_hash, hint) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        )))
        .bind(new_id())
        .bind(name.as_str())
        .bind(hash.as_slice())
        .bind(api_key_hint(&key))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_write)?;
        Ok((row, key, hash))
    }

    /// Every key, newest first, revoked ones included.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes a key that is still active; returns its hash, `None` if there was none.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING key_hash",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
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
