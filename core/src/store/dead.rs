//! The dead-letter view for operators: dead deliveries across tenants, filtered,
//! counted, replayed by hand-picked ids, or purged (replays by filter run as durable
//! jobs, see `jobs`).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::audit::{Pending, audited_count};
use super::deliveries::DELIVERY_COLUMNS;
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
    /// Names nothing: it matches every dead delivery.
    pub fn is_empty(&self) -> bool {
        self.tenant_id.is_none()
            && self.endpoint_id.is_none()
            && self.event_type.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.reason.is_none()
    }

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

impl DeadFilter {
    /// Appends the condition matching this filter's dead deliveries (`d`, joined
    /// to their events as `e`), binding only the filters given.
    pub(super) fn push_match(&self, q: &mut QueryBuilder<Postgres>) {
        q.push("d.status = 'dead'");
        if let Some(tenant) = self.tenant_id {
            q.push(" AND d.tenant_id = ").push_bind(tenant);
        }
        if let Some(endpoint) = self.endpoint_id {
            q.push(" AND d.endpoint_id = ").push_bind(endpoint);
        }
        if let Some(event_type) = &self.event_type {
            q.push(" AND e.event_type = ").push_bind(event_type.clone());
        }
        if let Some(since) = self.since {
            q.push(" AND d.created_at >= ").push_bind(since);
        }
        if let Some(until) = self.until {
            q.push(" AND d.created_at < ").push_bind(until);
        }
        if let Some(reason) = &self.reason {
            q.push(" AND d.last_error ILIKE '%' || ")
                .push_bind(reason.clone())
                .push(" || '%'");
        }
    }
}

/// The dead deliveries' rows joined to their events, filtered: `WHERE` is open.
const DEAD_FROM: &str = " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ";

/// Dead deliveries per endpoint.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadStat {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub dead: i64,
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
}

impl Store {
    pub async fn list_dead(&self, f: &DeadFilter, limit: i64) -> Result<Vec<Delivery>> {
        let mut q = QueryBuilder::new(format!("SELECT {DELIVERY_COLUMNS}"));
        q.push(DEAD_FROM);
        f.push_match(&mut q);
        q.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ")
            .push_bind(limit);
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    pub async fn dead_stats(&self, f: &DeadFilter) -> Result<Vec<DeadStat>> {
        let mut q = QueryBuilder::new(
            "SELECT d.tenant_id, d.endpoint_id, count(*) AS dead, min(d.created_at) AS oldest, max(d.created_at) AS newest",
        );
        q.push(DEAD_FROM);
        f.push_match(&mut q);
        q.push(" GROUP BY d.tenant_id, d.endpoint_id ORDER BY dead DESC");
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
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
            "UPDATE deliveries SET status = 'pending', accepted_at = NULL,
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
        let mut q = QueryBuilder::new("SELECT d.id");
        q.push(DEAD_FROM);
        f.push_match(&mut q);
        q.push(" FOR UPDATE OF d");
        let ids: Vec<Uuid> = q.build_query_scalar().fetch_all(&mut *tx).await?;
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
