//! The audit log: entries written by the statement that makes the change they
//! record (`audited`), entries for actions that change no row (`record_audit`),
//! and filtered, cursor-paged reads.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Result, Store};
use crate::audit::Actor;
use crate::ids::new_id;

/// One entry as read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// `api_key`, `admin`, `operator`, `console` or `system` (hookrelay itself).
    pub actor_kind: String,
    /// The key's, the operator's or the console session's id.
    pub actor_id: Option<Uuid>,
    pub actor_name: String,
    /// What was done, e.g. `endpoint.updated` or `endpoint.secret_read`.
    pub action: String,
    pub tenant_id: Option<Uuid>,
    /// The row acted on (endpoint, delivery, key, job…).
    pub target_id: Option<Uuid>,
    /// What changed (field names and new values; never a secret).
    #[schema(value_type = Object)]
    pub details: Value,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

/// Which entries to read; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant_id: Option<Uuid>,
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// An entry to write, as the one JSON parameter the SQL unpacks.
#[derive(Serialize)]
pub(super) struct Pending<'a> {
    id: Uuid,
    actor_kind: &'static str,
    actor_id: Option<Uuid>,
    actor_name: &'a str,
    action: &'a str,
    details: Value,
    address: Option<String>,
    request_id: Option<&'a str>,
}

impl<'a> Pending<'a> {
    pub(super) fn new(by: &'a Actor, action: &'a str, details: Value) -> sqlx::types::Json<Self> {
        sqlx::types::Json(Self {
            id: new_id(),
            actor_kind: by.kind.as_str(),
            actor_id: by.id,
            actor_name: &by.name,
            action,
            details,
            address: by.address.map(|a| a.to_string()),
            request_id: by.request_id.as_deref(),
        })
    }
}

const INSERT: &str = "INSERT INTO audit_log (id, actor_kind, actor_id, actor_name, action, tenant_id, target_id, details, address, request_id)";

fn unpack(entry: usize, tenant: &str, target: &str, details: &str) -> String {
    format!(
        "SELECT (a->>'id')::uuid, a->>'actor_kind', (a->>'actor_id')::uuid, a->>'actor_name', a->>'action',
                {tenant}, {target}, {details}, (a->>'address')::inet, a->>'request_id'
         FROM (SELECT ${entry}::jsonb AS a) entry"
    )
}

/// Wraps `statement`, which must end in `RETURNING`, so that the same statement
/// writes one audit entry (bound as parameter `$entry`, see `Pending`) when it
/// changed a row. `tenant` and `target` are SQL over the changed row's columns
/// (or parameters); the result is the statement's own rows.
pub(super) fn audited(statement: &str, entry: usize, tenant: &str, target: &str) -> String {
    audited_after("", statement, entry, tenant, target)
}

/// `audited` for a statement that needs common table expressions of its own:
/// `ctes` (each `name AS (…),`) come first, since a data-changing statement
/// cannot be nested in another `WITH`.
pub(super) fn audited_after(
    ctes: &str,
    statement: &str,
    entry: usize,
    tenant: &str,
    target: &str,
) -> String {
    format!(
        "WITH {ctes} changed AS ({statement}),
              logged AS ({INSERT} {} , (SELECT * FROM changed LIMIT 1) changed)
         SELECT * FROM changed",
        unpack(entry, tenant, target, "a->'details'"),
    )
}

/// Like `audited` for a statement that may change many rows: one entry, whose
/// details say how many (`rows`), written even when there were none.
pub(super) fn audited_count(statement: &str, entry: usize, tenant: &str) -> String {
    format!(
        "WITH changed AS ({statement}),
              logged AS ({INSERT} {})
         SELECT * FROM changed",
        unpack(
            entry,
            tenant,
            "NULL::uuid",
            "a->'details' || jsonb_build_object('rows', (SELECT count(*) FROM changed))"
        ),
    )
}

/// Records an action within the caller's transaction.
pub(super) async fn record_in(
    tx: &mut sqlx::PgConnection,
    by: &Actor,
    action: &str,
    tenant_id: Option<Uuid>,
    details: Value,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{INSERT} {}",
        unpack(1, "$2", "NULL::uuid", "a->'details'")
    )))
    .bind(Pending::new(by, action, details))
    .bind(tenant_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// Records an action about one row within the caller's transaction.
pub(super) async fn record_target_in(
    tx: &mut sqlx::PgConnection,
    by: &Actor,
    action: &str,
    tenant_id: Option<Uuid>,
    target_id: Option<Uuid>,
    details: Value,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{INSERT} {}",
        unpack(1, "$2", "$3", "a->'details'")
    )))
    .bind(Pending::new(by, action, details))
    .bind(tenant_id)
    .bind(target_id)
    .execute(tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records an action that changes no row of ours (a console link issued, a
    /// sign-in, a broker dead-letter requeue).
    pub async fn record_audit(
        &self,
        by: &Actor,
        action: &str,
        tenant_id: Option<Uuid>,
        target_id: Option<Uuid>,
        details: Value,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        record_target_in(&mut conn, by, action, tenant_id, target_id, details).await?;
        Ok(())
    }

    /// Entries matching `f`, newest first, `limit + 1` of them at most (the extra
    /// one says there is a next page); `after` is the last id of the page before.
    pub async fn list_audit(
        &self,
        f: &AuditFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor_kind, actor_id, actor_name, action, tenant_id, target_id, details,
                    host(address) AS address, request_id
             FROM audit_log
             WHERE ($1::uuid IS NULL OR tenant_id = $1)
               AND ($2::text IS NULL OR action = $2)
               AND ($3::uuid IS NULL OR actor_id = $3)
               AND ($4::timestamptz IS NULL OR at >= $4)
               AND ($5::timestamptz IS NULL OR at < $5)
               AND ($6::uuid IS NULL OR id < $6)
             ORDER BY id DESC LIMIT $7",
        )
        .bind(f.tenant_id)
        .bind(f.action.as_deref())
        .bind(f.actor_id)
        .bind(f.since)
        .bind(f.until)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?)
    }
}
