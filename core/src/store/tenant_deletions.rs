//! Deleting a tenant as a durable job: `start_tenant_deletion` marks the tenant
//! deleted, soft-deletes its endpoints and dead-letters its undelivered
//! deliveries (reason `tenant deleted`) in one transaction with its audit entry;
//! `work_tenant_deletion_chunk` then removes attempts, deliveries and events a
//! chunk at a time, and finally its endpoints (with their secrets), jobs and row.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{Result, Store};
use crate::audit::{Actor, action};
use crate::ids::new_id;
use crate::states::JobStatus;

/// Rows removed per chunk, per table.
const CHUNK: i64 = 500;

/// The reason dead-lettered deliveries of a deleted tenant carry.
pub const TENANT_DELETED: &str = "tenant deleted";

/// A tenant deletion and how far it got.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TenantDeletion {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub status: JobStatus,
    /// Rows removed so far (attempts, deliveries and events).
    pub removed: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, tenant_id, tenant_name, status, removed, created_at, updated_at, finished_at";

impl Store {
    /// Marks the tenant deleted and queues the job; `None` if there is no such
    /// (undeleted) tenant.
    pub async fn start_tenant_deletion(
        &self,
        tenant_id: Uuid,
        by: &Actor,
    ) -> Result<Option<TenantDeletion>> {
        let mut tx = self.pool.begin().await?;
        let name: Option<String> = sqlx::query_scalar(
            "UPDATE tenants SET deleted_at = now(), uid = NULL
             WHERE id = $1 AND deleted_at IS NULL RETURNING name",
        )
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(name) = name else {
            return Ok(None);
        };
        // Its console sessions end at once (sessions also check the tenant).
        sqlx::query(
            "UPDATE console_sessions SET ended_at = now() WHERE tenant_id = $1 AND ended_at IS NULL",
        )
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let endpoints = sqlx::query(
            "UPDATE endpoints SET deleted_at = now(), updated_at = now()
             WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let dead = sqlx::query(
            "UPDATE deliveries SET status = 'dead', last_error = $2, next_attempt_at = NULL, updated_at = now()
             WHERE tenant_id = $1 AND status IN ('pending', 'failed')",
        )
        .bind(tenant_id)
        .bind(TENANT_DELETED)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deletion: TenantDeletion = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tenant_deletions (id, tenant_id, tenant_name) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
        )))
        .bind(new_id())
        .bind(tenant_id)
        .bind(&name)
        .fetch_one(&mut *tx)
        .await?;
        let details = json!({
            "name": name,
            "deletion": deletion.id,
            "endpoints": endpoints,
            "dead_lettered": dead,
        });
        super::audit::record_in(
            &mut tx,
            by,
            action::TENANT_DELETED,
            Some(tenant_id),
            details,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(deletion))
    }

    pub async fn get_tenant_deletion(&self, id: Uuid) -> Result<Option<TenantDeletion>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tenant_deletions WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Works one chunk of the oldest open deletion, in one transaction; returns
    /// the rows it removed, or `None` when no deletion is open.
    pub async fn work_tenant_deletion_chunk(&self) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let open: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT id, tenant_id FROM tenant_deletions WHERE status <> 'done'
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, tenant)) = open else {
            tx.commit().await?;
            return Ok(None);
        };
        let mut removed: i64 = sqlx::query_scalar(
            "WITH picked AS (SELECT id FROM deliveries WHERE tenant_id = $1 LIMIT $2),
                  gone_attempts AS (DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM picked) RETURNING 1),
                  gone AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM picked) RETURNING 1)
             SELECT (SELECT count(*) FROM gone_attempts) + (SELECT count(*) FROM gone)",
        )
        .bind(tenant)
        .bind(CHUNK)
        .fetch_one(&mut *tx)
        .await?;
        if removed == 0 {
            removed = sqlx::query_scalar(
                "WITH gone AS (
                    DELETE FROM events WHERE (id, created_at) IN
                        (SELECT id, created_at FROM events WHERE tenant_id = $1 LIMIT $2)
                    RETURNING 1)
                 SELECT count(*) FROM gone",
            )
            .bind(tenant)
            .bind(CHUNK)
            .fetch_one(&mut *tx)
            .await?;
        }
        let done = removed == 0;
        if done {
            for sql in [
                "DELETE FROM endpoint_health_minutes WHERE endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1)",
                "DELETE FROM jobs WHERE tenant_id = $1 OR endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1)",
                "DELETE FROM endpoints WHERE tenant_id = $1",
                "DELETE FROM tenants WHERE id = $1",
            ] {
                sqlx::query(sql).bind(tenant).execute(&mut *tx).await?;
            }
        }
        sqlx::query(
            "UPDATE tenant_deletions SET removed = removed + $2, updated_at = now(),
                    status = CASE WHEN $3 THEN 'done' ELSE 'running' END,
                    finished_at = CASE WHEN $3 THEN now() END
             WHERE id = $1",
        )
        .bind(id)
        .bind(removed)
        .bind(done)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(removed))
    }
}
