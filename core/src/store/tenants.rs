//! Tenants, addressable by their id or their producer-chosen `uid`.

use serde_json::json;
use uuid::Uuid;

use super::audit::{Pending, audited};
use crate::audit::{Actor, action};

use super::{Result, Store, StoreError};
use crate::model::Tenant;
use crate::validation::{TenantName, TenantUid};

const COLUMNS: &str = "id, uid, name, ingest_rate, max_endpoints, created_at";

impl Store {
    pub async fn insert_tenant(
        &self,
        id: Uuid,
        uid: Option<&TenantUid>,
        name: &TenantName,
        by: &Actor,
    ) -> Result<Tenant> {
        sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!("INSERT INTO tenants (id, uid, name) VALUES ($1, $2, $3) RETURNING {COLUMNS}"),
            4,
            "changed.id",
            "changed.id",
        )))
        .bind(id)
        .bind(uid.map(TenantUid::as_str))
        .bind(name.as_str())
        .bind(Pending::new(
            by,
            action::TENANT_CREATED,
            json!({ "name": name.as_str(), "uid": uid.map(TenantUid::as_str) }),
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_write)
    }

    /// Whether the tenant exists (a dead-lettered ingest message is re-checked by it).
    pub async fn tenant_exists(&self, id: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL)",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Finds a tenant by id (when `key` parses as one) or by uid.
    pub async fn find_tenant(&self, key: &str) -> Result<Option<Tenant>> {
        let id = Uuid::parse_str(key).ok();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants WHERE (id = $1 OR uid = $2) AND deleted_at IS NULL ORDER BY (id = $1) DESC LIMIT 1")))
            .bind(id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A page of tenants, newest first; `only` keeps those a scoped key reaches.
    pub async fn list_tenants(
        &self,
        limit: i64,
        after: Option<Uuid>,
        only: Option<&[Uuid]>,
    ) -> Result<Vec<Tenant>> {
        if let Some(after) = after {
            // A cursor must be a tenant the caller may list.
            let found: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL
                                  AND ($2::uuid[] IS NULL OR id = ANY($2)))",
            )
            .bind(after)
            .bind(only)
            .fetch_one(&self.pool)
            .await?;
            if !found {
                return Err(super::StoreError::UnknownCursor);
            }
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tenants
             WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM tenants WHERE id = $1))
               AND ($3::uuid[] IS NULL OR id = ANY($3))
             ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(after)
        .bind(limit + 1)
        .bind(only)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets the tenant's own quotas (`None`: the configured default).
    pub async fn set_tenant_limits(
        &self,
        id: Uuid,
        ingest_rate: Option<i32>,
        max_endpoints: Option<i32>,
        by: &Actor,
    ) -> Result<Option<Tenant>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!(
                "UPDATE tenants SET ingest_rate = $2, max_endpoints = $3 WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
            ),
            4,
            "changed.id",
            "changed.id",
        )))
        .bind(id)
        .bind(ingest_rate)
        .bind(max_endpoints)
        .bind(Pending::new(
            by,
            action::TENANT_LIMITS_CHANGED,
            json!({ "ingest_rate": ingest_rate, "max_endpoints": max_endpoints }),
        ))
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn all_tenants(&self) -> Result<Vec<Tenant>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tenants WHERE deleted_at IS NULL"
        )))
        .fetch_all(&self.pool)
        .await?)
    }
}
