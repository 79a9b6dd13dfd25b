//! Durable bulk jobs and single replays: both make deliveries due now, and the
//! scheduler sends them with their original `webhook-id`.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::audit::{Pending, audited};
use crate::audit::{Actor, action};

use super::{DeadFilter, NewDelivery, Result, Store, StoreError};
use crate::model::{Job, JobKind};

/// An open job as its worker sees it.
#[derive(sqlx::FromRow)]
struct OpenJob {
    id: Uuid,
    kind: JobKind,
    tenant_id: Option<Uuid>,
    endpoint_id: Option<Uuid>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    event_type: Option<String>,
    reason: Option<String>,
    cursor: Option<Uuid>,
    created_at: DateTime<Utc>,
    /// Who asked for it (a cancel job marks what it cancels with it).
    actor: Option<String>,
}

const JOB_COLUMNS: &str = "id, kind, tenant_id, endpoint_id, since, until, event_type, reason, status, done_count, created_at, updated_at, finished_at";
/// A re-sent delivery's due time: now, or, for one that takes its place in an
/// ordered endpoint's order, none (it waits its turn; the dispatchers' sweep moves
/// the order on), unless it is open already: the head stays the head, and one
/// waiting keeps waiting.
const DUE_OR_IN_LINE: &str = "CASE WHEN d.accepted_at IS NOT NULL
        AND (SELECT ordering FROM endpoints WHERE id = d.endpoint_id) = 'strict'
        THEN CASE WHEN d.status IN ('pending', 'failed') THEN d.next_attempt_at END ELSE now() END";
/// A re-sent delivery that was cancelled is no longer marked so.
const UNCANCELLED: &str = "cancelled_by = NULL,
        last_error = CASE WHEN d.status = 'cancelled' THEN NULL ELSE d.last_error END";

/// Deliveries re-queued per chunk of a job.
const CHUNK: i64 = 500;

impl Store {
    /// Makes one of a tenant's deliveries pending again for the caller to publish
    /// (see `PUBLISH_FALLBACK_SECS`); not if its endpoint was deleted. On an ordered
    /// endpoint it goes out of band: it leaves the order and waits for no one.
    pub async fn replay_delivery(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        by: &Actor,
    ) -> Result<Option<NewDelivery>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(audited(
            "UPDATE deliveries d SET status = 'pending', next_attempt_at = now() + make_interval(secs => $3),
                    accepted_at = NULL, updated_at = now()
             FROM endpoints e
             WHERE d.tenant_id = $1 AND d.id = $2 AND e.id = d.endpoint_id AND e.deleted_at IS NULL
             RETURNING d.id, d.endpoint_id, d.attempts",
            4,
            "$1",
            "changed.id",
        )))
        .bind(tenant_id)
        .bind(id)
        .bind(super::PUBLISH_FALLBACK_SECS)
        .bind(Pending::new(by, action::DELIVERY_REPLAYED, json!({})))
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
        by: &Actor,
    ) -> Result<Job> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!(
                "INSERT INTO jobs (id, kind, tenant_id, endpoint_id, since, until) VALUES ($1, 'recover', $2, $3, $4, $5)
                 RETURNING {JOB_COLUMNS}"
            ),
            6,
            "changed.tenant_id",
            "changed.endpoint_id",
        )))
        .bind(id)
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(since)
        .bind(until)
        .bind(Pending::new(
            by,
            action::ENDPOINT_RECOVERED,
            json!({ "job": id, "since": since, "until": until }),
        ))
        .fetch_one(&self.pool)
        .await?)
    }

    /// A job cancelling every undelivered delivery of an endpoint (routed before it
    /// reaches them), marked with who asked.
    pub async fn create_cancel_job(
        &self,
        id: Uuid,
        tenant_id: Uuid,
        endpoint_id: Uuid,
        by: &Actor,
    ) -> Result<Job> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!(
                "INSERT INTO jobs (id, kind, tenant_id, endpoint_id, since, actor)
                 VALUES ($1, 'cancel_backlog', $2, $3, now(), $4)
                 RETURNING {JOB_COLUMNS}"
            ),
            5,
            "changed.tenant_id",
            "changed.endpoint_id",
        )))
        .bind(id)
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(&by.name)
        .bind(Pending::new(
            by,
            action::BACKLOG_CANCELLED,
            json!({ "job": id }),
        ))
        .fetch_one(&self.pool)
        .await?)
    }

    /// A job replaying the dead deliveries that match `f` (as they stand now).
    pub async fn create_dead_replay_job(
        &self,
        id: Uuid,
        f: &DeadFilter,
        by: &Actor,
    ) -> Result<Job> {
        sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!(
                "INSERT INTO jobs (id, kind, tenant_id, endpoint_id, event_type, since, until, reason)
                 VALUES ($1, 'dead_replay', $2, $3, $4, $5, $6, $7)
                 RETURNING {JOB_COLUMNS}"
            ),
            8,
            "changed.tenant_id",
            "changed.id",
        )))
        .bind(id)
        .bind(f.tenant_id)
        .bind(f.endpoint_id)
        .bind(f.event_type.as_deref())
        .bind(f.since)
        .bind(f.until)
        .bind(f.reason.as_deref())
        .bind(Pending::new(by, action::DEAD_REPLAYED, f.describe()))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_write)
    }

    pub async fn get_job(&self, id: Uuid) -> Result<Option<Job>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Runs one chunk of the oldest open job (or of job `only`), in one transaction:
    /// the chunk's deliveries and the job's cursor move together, so a crash repeats
    /// nothing and loses nothing, and the row lock keeps two workers off the same
    /// job. Returns how many deliveries it made due, or `None` when no job is open.
    pub async fn work_job_chunk(&self, only: Option<Uuid>) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let job: Option<OpenJob> = sqlx::query_as(
            "SELECT id, kind, tenant_id, endpoint_id, since, until, event_type, reason, cursor, created_at, actor
             FROM jobs
             WHERE status IN ('queued', 'running') AND ($1::uuid IS NULL OR id = $1)
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(only)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job) = job else {
            tx.commit().await?;
            return Ok(None);
        };
        // Both kinds walk their deliveries in id order from the cursor.
        let ids: Vec<Uuid> = if job.kind == JobKind::DeadReplay {
            let filter = DeadFilter {
                tenant_id: job.tenant_id,
                endpoint_id: job.endpoint_id,
                event_type: job.event_type.clone(),
                since: job.since,
                until: job.until,
                reason: job.reason.clone(),
            };
            // Only what was dead when the job was asked for: a delivery that dies
            // again meanwhile is not replayed twice.
            let mut q = QueryBuilder::new(
                "WITH picked AS (
                    SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ",
            );
            filter.push_match(&mut q);
            q.push(" AND d.updated_at <= ").push_bind(job.created_at);
            if let Some(cursor) = job.cursor {
                q.push(" AND d.id > ").push_bind(cursor);
            }
            q.push(" ORDER BY d.id LIMIT ")
                .push_bind(CHUNK)
                .push(") UPDATE deliveries d SET status = 'pending', next_attempt_at = ")
                .push(DUE_OR_IN_LINE)
                .push(", ")
                .push(UNCANCELLED)
                .push(
                    ", updated_at = now()
                 FROM picked WHERE d.id = picked.id
                 RETURNING d.id",
                );
            q.build_query_scalar().fetch_all(&mut *tx).await?
        } else if job.kind == JobKind::CancelBacklog {
            // The chunk walked, not only what it cancelled: a delivery delivered
            // meanwhile is left alone, yet the job goes on past it (and a chunk
            // short of `CHUNK` still means the end).
            sqlx::query_scalar(concat!(
                "WITH picked AS (
                    SELECT id FROM deliveries
                    WHERE endpoint_id = $1 AND status IN ('pending', 'failed') AND created_at < $2
                      AND ($4::uuid IS NULL OR id > $4)
                    ORDER BY id LIMIT $5),
                 cancelled AS (
                    UPDATE deliveries d SET ",
                super::controls::cancel_set!(),
                " FROM picked WHERE d.id = picked.id AND d.status IN ('pending', 'failed'))
                 SELECT id FROM picked",
            ))
            .bind(job.endpoint_id)
            .bind(job.created_at)
            .bind(job.actor.as_deref().unwrap_or("a cancel job"))
            .bind(job.cursor)
            .bind(CHUNK)
            .fetch_all(&mut *tx)
            .await?
        } else {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "WITH picked AS (
                    SELECT id FROM deliveries
                    WHERE endpoint_id = $1 AND status IN ('pending', 'failed', 'dead', 'cancelled')
                      AND created_at >= $2 AND ($3::timestamptz IS NULL OR created_at < $3)
                      AND ($4::uuid IS NULL OR id > $4)
                    ORDER BY id LIMIT $5)
                 UPDATE deliveries d SET status = 'pending', next_attempt_at = {DUE_OR_IN_LINE}, {UNCANCELLED},
                        updated_at = now()
                 FROM picked WHERE d.id = picked.id
                 RETURNING d.id"
            )))
            .bind(job.endpoint_id)
            .bind(job.since)
            .bind(job.until)
            .bind(job.cursor)
            .bind(CHUNK)
            .fetch_all(&mut *tx)
            .await?
        };
        let n = ids.len() as i64;
        let last = ids.into_iter().max().or(job.cursor);
        sqlx::query(
            "UPDATE jobs SET cursor = $2, done_count = done_count + $3, updated_at = now(),
                 status = CASE WHEN $3 < $4 THEN 'done' ELSE 'running' END,
                 finished_at = CASE WHEN $3 < $4 THEN now() ELSE NULL END
             WHERE id = $1",
        )
        .bind(job.id)
        .bind(last)
        .bind(n as i32)
        .bind(CHUNK as i32)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(n))
    }
}
