//! Producer API keys, stored only as SHA-256 hashes (plus a short hint to tell them
//! apart), each with the tenants it reaches, its permissions and an optional expiry.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::audit::{Pending, audited};
use super::{Result, Store, StoreError};
use crate::access::{Grant, Permissions};
use crate::audit::{Actor, action};
use crate::crypto::{api_key_hint, generate_api_key, hash_api_key};
use crate::ids::new_id;
use crate::model::ApiKey;
use crate::validation::KeyName;

const COLUMNS: &str = "id, name, hint, tenant_ids, permissions, expires_at, created_at, revoked_at";

/// What a new key may do.
pub struct NewKey<'a> {
    pub name: &'a KeyName,
    /// `None`: every tenant.
    pub tenants: Option<&'a [Uuid]>,
    pub permissions: Permissions,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    key_hash: Vec<u8>,
    id: Uuid,
    name: String,
    tenant_ids: Option<Vec<Uuid>>,
    permissions: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

impl GrantRow {
    fn into_grant(self) -> Option<([u8; 32], Grant)> {
        let hash = self.key_hash.try_into().ok()?;
        Some((
            hash,
            Grant {
                key_id: self.id,
                name: self.name,
                tenants: self.tenant_ids.map(Arc::from),
                permissions: Permissions::from_names(&self.permissions),
                expires_at: self.expires_at,
            },
        ))
    }
}

const GRANT_COLUMNS: &str = "key_hash, id, name, tenant_ids, permissions, expires_at";

impl Store {
    /// Creates a key; returns it as listed, the key itself (to be shown once) and its grant.
    pub async fn create_api_key(
        &self,
        new: &NewKey<'_>,
        by: &Actor,
    ) -> Result<(ApiKey, String, [u8; 32], Grant)> {
        let key = generate_api_key();
        let hash = hash_api_key(&key);
        let names = new.permissions.names();
        let details = json!({
            "name": new.name.as_str(),
            "tenants": new.tenants,
            "permissions": names,
            "expires_at": new.expires_at,
        });
        let row: ApiKey = sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!(
                "INSERT INTO api_keys (id, name, key_hash, hint, tenant_ids, permissions, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            8,
            "NULL::uuid",
            "changed.id",
        )))
        .bind(new_id())
        .bind(new.name.as_str())
        .bind(hash.as_slice())
        .bind(api_key_hint(&key))
        .bind(new.tenants)
        .bind(&names)
        .bind(new.expires_at)
        .bind(Pending::new(by, action::KEY_CREATED, details))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_write)?;
        let grant = Grant {
            key_id: row.id,
            name: row.name.clone(),
            tenants: new.tenants.map(Arc::from),
            permissions: new.permissions,
            expires_at: new.expires_at,
        };
        Ok((row, key, hash, grant))
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
    pub async fn revoke_api_key(&self, id: Uuid, by: &Actor) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(audited(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
             RETURNING key_hash, id",
            2,
            "NULL::uuid",
            "changed.id",
        )))
        .bind(id)
        .bind(Pending::new(by, action::KEY_REVOKED, json!({})))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every usable key with its grant, to fill the gateway's in-memory cache.
    pub async fn active_api_keys(&self) -> Result<Vec<([u8; 32], Grant)>> {
        let rows: Vec<GrantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM api_keys
             WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(GrantRow::into_grant).collect())
    }

    pub async fn find_api_key(&self, key_hash: &[u8; 32]) -> Result<Option<Grant>> {
        let row: Option<GrantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
        )))
        .bind(key_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(GrantRow::into_grant).map(|(_, g)| g))
    }
}
