//! The dead-letter view for operators: dead deliveries across tenants, filtered,
//! counted, replayed by hand-picked ids, or purged (replays by filter run as durable
//! jobs, see `jobs`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{Pending, audited_count};
use super::{Result, Store};
use crate::audit::{Actor, action};
use crate::model::{Attempt, Delivery, Event};

/// Most deliveries an operator can replay by picking them one by one.
pub const MAX_PICKED: usize = 500;

/// Which dead deliveries an operator means; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    pub tenant_id: Option<Uuid>,
    pub endpoint_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Matches part of the recorded reason (`last_error`), ignoring case.
    pub reason: Option<String>,
}

impl DeadFilter {
    /// The filter as the audit log shows it.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "tenant": self.tenant_id,
            "endpoint": self.endpoint_id,
            "event_type": self.event_type,
            "since": self.since,
            "until": self.until,
            "reason": self.reason,
        })
    }
}

pub(super) const MATCH_DEAD: &str = "d.status = 'dead'
    AND ($1::uuid IS NULL OR d.tenant_id = $1)
    AND ($2::uuid IS NULL OR d.endpoint_id = $2)
    AND ($3::text IS NULL OR e.event_type = $3)
    AND ($4::timestamptz IS NULL OR d.created_at >= $4)
    AND ($5::timestamptz IS NULL OR d.created_at < $5)
    AND ($6::text IS NULL OR d.last_error ILIKE '%' || $6 || '%')";

/// Dead deliveries per endpoint.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadStat {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub dead: i64,
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
}

macro_rules! bind_filter {
    ($query:expr, $f:expr) => {
        $query
            .bind($f.tenant_id)
            .bind($f.endpoint_id)
            .bind($f.event_type.as_deref())
            .bind($f.since)
            .bind($f.until)
            .bind($f.reason.as_deref())
    };
}
pub(super) use bind_filter;

impl Store {
    pub async fn list_dead(&self, f: &DeadFilter, limit: i64) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT d.id, d.event_id, d.endpoint_id, d.tenant_id, e.event_type, d.status, d.attempts, d.next_attempt_at,
                    d.last_attempt_at, d.last_response_status, d.last_error, d.delivered_at, d.created_at, d.updated_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE {MATCH_DEAD} ORDER BY d.created_at DESC, d.id DESC LIMIT $7"
        );
        Ok(bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), f)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn dead_stats(&self, f: &DeadFilter) -> Result<Vec<DeadStat>> {
        let sql = format!(
            "SELECT d.tenant_id, d.endpoint_id, count(*) AS dead, min(d.created_at) AS oldest, max(d.created_at) AS newest
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE {MATCH_DEAD} GROUP BY d.tenant_id, d.endpoint_id ORDER BY dead DESC"
        );
        Ok(bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), f)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Makes these deliveries pending again if they are still dead (at most
    /// `MAX_PICKED` ids); returns each with its endpoint, for the caller to publish
    /// (see `PUBLISH_FALLBACK_SECS`).
    pub async fn replay_dead_ids(
        &self,
        ids: &[Uuid],
        by: &Actor,
    ) -> Result<Vec<super::NewDelivery>> {
        let ids = &ids[..ids.len().min(MAX_PICKED)];
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(audited_count(
            "UPDATE deliveries SET status = 'pending',
                    next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
             WHERE id = ANY($1) AND status = 'dead'
             RETURNING id, endpoint_id, attempts",
            3,
            "NULL::uuid",
        )))
        .bind(ids)
        .bind(super::PUBLISH_FALLBACK_SECS)
        .bind(Pending::new(
            by,
            action::DEAD_REPLAYED,
            serde_json::json!({ "picked": ids }),
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes matching dead deliveries and their attempts, in one transaction.
    pub async fn purge_dead(&self, f: &DeadFilter, by: &Actor) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE {MATCH_DEAD} FOR UPDATE OF d"
        );
        let ids: Vec<Uuid> = bind_filter!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), f)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM attempts WHERE delivery_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM deliveries WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut details = f.describe();
        details["rows"] = n.into();
        super::audit::record_in(&mut tx, by, action::DEAD_PURGED, f.tenant_id, details).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// One delivery with its event and attempts, whatever its tenant (operators only).
    pub async fn inspect_delivery(
        &self,
        id: Uuid,
    ) -> Result<Option<(Delivery, Event, Vec<Attempt>)>> {
        let tenant: Option<Uuid> =
            sqlx::query_scalar("SELECT tenant_id FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(tenant) = tenant else {
            return Ok(None);
        };
        let Some(delivery) = self.get_delivery(tenant, id).await? else {
            return Ok(None);
        };
        let Some(event) = self.get_event(tenant, delivery.event_id).await? else {
            return Ok(None);
        };
        let attempts = self.all_attempts(tenant, id).await?;
        Ok(Some((delivery, event, attempts)))
    }
}
