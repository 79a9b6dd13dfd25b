//! Console sessions, kept server-side: the cookie names a row, and the row must
//! still be open — not signed out, not past its expiry, its issuing key not
//! revoked, its operator not disabled, its admin token still the configured one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};

/// A session as stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    /// `tenant` or `admin`.
    pub kind: &'static str,
    pub tenant_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub operator_id: Option<Uuid>,
    pub admin_digest: Option<Vec<u8>>,
    pub expires_at: DateTime<Utc>,
}

/// What an open session says about who holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenSession {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub operator_id: Option<Uuid>,
    /// The operator's name (operator sessions), or the issuing key's name.
    pub holder: Option<String>,
}

impl Store {
    /// Records a session that has just been opened; drops long-expired rows.
    pub async fn start_session(&self, s: &NewSession) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id, kind, tenant_id, api_key_id, operator_id, admin_digest, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(s.id)
        .bind(s.kind)
        .bind(s.tenant_id)
        .bind(s.api_key_id)
        .bind(s.operator_id)
        .bind(s.admin_digest.as_deref())
        .bind(s.expires_at)
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
                    COALESCE(o.name, k.name) AS holder
             FROM console_sessions s
             LEFT JOIN api_keys k ON k.id = s.api_key_id
             LEFT JOIN operators o ON o.id = s.operator_id
             WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > now()
               AND (s.api_key_id IS NULL
                    OR (k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())))
               AND (s.operator_id IS NULL OR (o.id IS NOT NULL AND o.disabled_at IS NULL))
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
