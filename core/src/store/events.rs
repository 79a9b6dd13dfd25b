//! Events: written by the router (idempotently), read through the API.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Result;
use super::Store;
use crate::model::Event;

const COLUMNS: &str = "id, tenant_id, event_type, channels, payload, idempotency_key, request_id, created_at, routed_at";

/// An event as the router stores it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub payload: String,
    pub idempotency_key: Option<String>,
    pub accepted_at: DateTime<Utc>,
    /// The `x-request-id` of the request that accepted it.
    pub request_id: Option<String>,
    /// The trace it was accepted in, when spans are exported.
    pub traceparent: Option<String>,
    /// The channels it was published on.
    pub channels: Option<Vec<String>>,
}

impl Store {
    pub async fn get_event(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<Event>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn list_events(
        &self,
        tenant_id: Uuid,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<Event>> {
        self.check_cursor(super::Listed::Events, tenant_id, after)
            .await?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events
             WHERE tenant_id = $1
               AND ($2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM events WHERE id = $2 AND tenant_id = $1))
             ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(tenant_id)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?)
    }
}
