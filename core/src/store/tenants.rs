//! Tenants, addressable by their id or their producer-chosen `uid`.

use uuid::Uuid;

use super::{Result, Store, StoreError};
use crate::model::Tenant;
use crate::rules::{TenantName, TenantUid};

impl Store {
    pub async fn insert_tenant(
        &self,
        id: Uuid,
        uid: Option<&TenantUid>,
        name: &TenantName,
    ) -> Result<Tenant> {
        sqlx::query_as("INSERT INTO tenants (id, uid, name) VALUES ($1, $2, $3) RETURNING id, uid, name, created_at")
            .bind(id)
            .bind(uid.map(TenantUid::as_str))
            .bind(name.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_write)
    }

    /// Whether the tenant exists (a dead-lettered ingest message is re-checked by it).
    pub async fn tenant_exists(&self, id: Uuid) -> Result<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Finds a tenant by id (when `key` parses as one) or by uid.
    pub async fn find_tenant(&self, key: &str) -> Result<Option<Tenant>> {
        let id = Uuid::parse_str(key).ok();
        Ok(sqlx::query_as("SELECT id, uid, name, created_at FROM tenants WHERE id = $1 OR uid = $2 ORDER BY (id = $1) DESC LIMIT 1")
            .bind(id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_tenants(&self, limit: i64, after: Option<Uuid>) -> Result<Vec<Tenant>> {
        Ok(sqlx::query_as(
            "SELECT id, uid, name, created_at FROM tenants
             WHERE $1::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM tenants WHERE id = $1)
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn all_tenants(&self) -> Result<Vec<Tenant>> {
        Ok(
            sqlx::query_as("SELECT id, uid, name, created_at FROM tenants")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
