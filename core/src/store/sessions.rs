//! Console sessions, kept server-side: the cookie names a row, and the row must
//! still be open — not signed out or ended by an operator, not past its expiry,
//! its issuing key not revoked, its operator (or the operator who issued its link)
//! not disabled, its admin token still the configured one, its tenant not deleted.
//! A tenant's session holds the permissions its link granted.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{Pending, audited};
use super::{Result, Store};
use crate::access::Permissions;
use crate::audit::{Actor, action};
use crate::states::SessionKind;

/// A session as stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    /// `tenant` or `admin`.
    pub kind: SessionKind,
    pub tenant_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub operator_id: Option<Uuid>,
    pub admin_digest: Option<Vec<u8>>,
    pub expires_at: DateTime<Utc>,
    /// A tenant's session: what it may do.
    pub permissions: Option<Permissions>,
    /// A tenant's session opened by a link an operator issued.
    pub issued_by_operator: Option<Uuid>,
    /// A tenant's session opened by a link the admin token issued.
    pub issued_by_admin: bool,
}

/// What an open session says about who holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenSession {
    pub id: Uuid,
    pub kind: SessionKind,
    pub tenant_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub operator_id: Option<Uuid>,
    /// The operator's name (operator sessions), or the issuing key's name.
    pub holder: Option<String>,
    /// A tenant's session: the names of its permissions (`None`: opened before
    /// sessions held permissions; it may only read).
    pub permissions: Option<Vec<String>>,
}

impl OpenSession {
    /// What a tenant's session may do.
    pub fn permissions(&self) -> Permissions {
        match &self.permissions {
            Some(names) => Permissions::from_names(names),
            None => Permissions::from_names(&["read"]),
        }
    }
}

/// An open session as the operator lists it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConsoleSession {
    pub id: Uuid,
    /// `tenant` (opened by a console link) or `admin` (an operator signed in).
    pub kind: SessionKind,
    pub tenant_id: Option<Uuid>,
    /// Who opened it or issued its link: `api_key`, `operator` or `admin`.
    pub issued_by: String,
    /// The key's or the operator's id (`null` for the admin token).
    pub issuer_id: Option<Uuid>,
    /// A tenant's session: what it may do (`null` for operators' sessions).
    pub permissions: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Records a session that has just been opened; drops long-expired rows.
    pub async fn start_session(&self, s: &NewSession) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id, kind, tenant_id, api_key_id, operator_id, admin_digest, expires_at,
                                           permissions, issued_by_operator, issued_by_admin)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id)
        .bind(s.kind)
        .bind(s.tenant_id)
        .bind(s.api_key_id)
        .bind(s.operator_id)
        .bind(s.admin_digest.as_deref())
        .bind(s.expires_at)
        .bind(s.permissions.map(|p| p.names()))
        .bind(s.issued_by_operator)
        .bind(s.issued_by_admin)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session if it is still open. `admin_digest` is the digest of the admin
    /// token configured now: a session opened with another token is over.
    pub async fn open_session(
        &self,
        id: Uuid,
        admin_digest: Option<&[u8]>,
    ) -> Result<Option<OpenSession>> {
        Ok(sqlx::query_as(
            "SELECT s.id, s.kind, s.tenant_id, s.api_key_id, s.operator_id,
                    COALESCE(o.name, k.name) AS holder, s.permissions
             FROM console_sessions s
             LEFT JOIN api_keys k ON k.id = s.api_key_id
             LEFT JOIN operators o ON o.id = s.operator_id
             WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > now()
               AND (s.api_key_id IS NULL
                    OR (k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())))
               AND (s.operator_id IS NULL OR (o.id IS NOT NULL AND o.disabled_at IS NULL))
               AND (s.issued_by_operator IS NULL OR EXISTS (
                      SELECT 1 FROM operators i WHERE i.id = s.issued_by_operator AND i.disabled_at IS NULL))
               AND (s.tenant_id IS NULL OR EXISTS (
                      SELECT 1 FROM tenants t WHERE t.id = s.tenant_id AND t.deleted_at IS NULL))
               AND (s.admin_digest IS NULL OR s.admin_digest = $2)",
        )
        .bind(id)
        .bind(admin_digest)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Signs a session out.
    pub async fn end_session(&self, id: Uuid) -> Result<()> {
        sqlx::query(
            "UPDATE console_sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Open sessions, newest first (at most `limit`), optionally of one tenant.
    pub async fn list_console_sessions(
        &self,
        tenant_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ConsoleSession>> {
        Ok(sqlx::query_as(
            "SELECT id, kind, tenant_id,
                    CASE WHEN api_key_id IS NOT NULL THEN 'api_key'
                         WHEN operator_id IS NOT NULL OR issued_by_operator IS NOT NULL THEN 'operator'
                         ELSE 'admin' END AS issued_by,
                    COALESCE(api_key_id, operator_id, issued_by_operator) AS issuer_id,
                    permissions, created_at, expires_at
             FROM console_sessions
             WHERE ended_at IS NULL AND expires_at > now()
               AND ($1::uuid IS NULL OR tenant_id = $1)
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ends an open session for the operator, with its audit entry; `false` if no
    /// open session has this id.
    pub async fn end_console_session(&self, id: Uuid, by: &Actor) -> Result<bool> {
        let ended: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(sqlx::AssertSqlSafe(audited(
            "UPDATE console_sessions SET ended_at = now()
             WHERE id = $1 AND ended_at IS NULL AND expires_at > now() RETURNING id, tenant_id",
            2,
            "changed.tenant_id",
            "changed.id",
        )))
        .bind(id)
        .bind(Pending::new(
            by,
            action::CONSOLE_SESSION_ENDED,
            serde_json::json!({}),
        ))
        .fetch_optional(&self.pool)
        .await?;
        Ok(ended.is_some())
    }
}
