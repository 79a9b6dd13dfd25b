//! Durable bulk jobs and single replays: both make deliveries due now, and the
//! scheduler sends them with their original `webhook-id`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{NewDelivery, Result, Store};
use crate::model::Job;

const JOB_COLUMNS: &str = "id, kind, tenant_id, endpoint_id, since, until, status, done_count, created_at, updated_at, finished_at";
/// Deliveries re-queued per chunk of a job.
const CHUNK: i64 = 500;

impl Store {
    /// Makes one of a tenant's deliveries due now (not if its endpoint was deleted).
    pub async fn replay_delivery(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<NewDelivery>> {
        Ok(sqlx::query_as(
            "UPDATE deliveries d SET status = 'pending', next_attempt_at = now() + interval '60 seconds', updated_at = now()
             FROM endpoints e
             WHERE d.tenant_id = $1 AND d.id = $2 AND e.id = d.endpoint_id AND e.deleted_at IS NULL
             RETURNING d.id, d.endpoint_id",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn create_recover_job(
        &self,
        id: Uuid,
        tenant_id: Uuid,
        endpoint_id: Uuid,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Job> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO jobs (id, kind, tenant_id, endpoint_id, since, until) VALUES ($1, 'recover', $2, $3, $4, $5)
             RETURNING {JOB_COLUMNS}"
        )))
        .bind(id)
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn get_job(&self, id: Uuid) -> Result<Option<Job>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Runs one chunk of the oldest open job, in one transaction: the chunk's
    /// deliveries and the job's cursor move together, so a crash repeats nothing and
    /// loses nothing, and the row lock keeps two workers off the same job.
    /// Returns how many deliveries it made due, or `None` when no job is open.
    pub async fn work_job_chunk(&self) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let job: Option<(
            Uuid,
            Uuid,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<Uuid>,
        )> = sqlx::query_as(
            "SELECT id, endpoint_id, since, until, cursor FROM jobs
             WHERE status IN ('queued', 'running')
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((job, endpoint, since, until, cursor)) = job else {
            tx.commit().await?;
            return Ok(None);
        };
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "WITH picked AS (
                SELECT id FROM deliveries
                WHERE endpoint_id = $1 AND status IN ('failed', 'dead')
                  AND created_at >= $2 AND ($3::timestamptz IS NULL OR created_at < $3)
                  AND ($4::uuid IS NULL OR id > $4)
                ORDER BY id LIMIT $5)
             UPDATE deliveries d SET status = 'pending', next_attempt_at = now(), updated_at = now()
             FROM picked WHERE d.id = picked.id
             RETURNING d.id",
        )
        .bind(endpoint)
        .bind(since)
        .bind(until)
        .bind(cursor)
        .bind(CHUNK)
        .fetch_all(&mut *tx)
        .await?;
        let n = ids.len() as i64;
        let last = ids.into_iter().max().or(cursor);
        sqlx::query(
            "UPDATE jobs SET cursor = $2, done_count = done_count + $3, updated_at = now(),
                 status = CASE WHEN $3 < $4 THEN 'done' ELSE 'running' END,
                 finished_at = CASE WHEN $3 < $4 THEN now() ELSE NULL END
             WHERE id = $1",
        )
        .bind(job)
        .bind(last)
        .bind(n as i32)
        .bind(CHUNK as i32)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(n))
    }
}
