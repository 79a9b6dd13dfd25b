//! Named operators: each has a token (`hro_…`, stored as its SHA-256 hash), so the
//! audit log says which operator acted. The single admin token works beside them.

use serde_json::json;
use uuid::Uuid;

use super::audit::{Pending, audited};
use super::{Result, Store, StoreError};
use crate::audit::{Actor, action};
use crate::crypto::hash_api_key;
use crate::ids::new_id;

/// The prefix of operator tokens.
pub const OPERATOR_TOKEN_PREFIX: &str = "hro_";

impl Store {
    /// Adds an operator; returns its id and its token (shown once).
    pub async fn add_operator(&self, name: &str, by: &Actor) -> Result<(Uuid, String)> {
        let token = format!(
            "{OPERATOR_TOKEN_PREFIX}{}",
            &crate::crypto::generate_api_key()[crate::crypto::KEY_PREFIX.len()..]
        );
        let id: Uuid = sqlx::query_scalar(sqlx::AssertSqlSafe(audited(
            "INSERT INTO operators (id, name, token_hash) VALUES ($1, $2, $3) RETURNING id",
            4,
            "NULL::uuid",
            "changed.id",
        )))
        .bind(new_id())
        .bind(name)
        .bind(hash_api_key(&token).as_slice())
        .bind(Pending::new(
            by,
            action::OPERATOR_ADDED,
            json!({ "name": name }),
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_write)?;
        Ok((id, token))
    }

    /// Disables the operator named `name`: its token stops working and its console
    /// sessions end at once. `false` when there is no such operator, or it is
    /// already disabled (then nothing is recorded).
    pub async fn disable_operator(&self, name: &str, by: &Actor) -> Result<bool> {
        let disabled: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(audited(
            "UPDATE operators SET disabled_at = now() WHERE name = $1 AND disabled_at IS NULL RETURNING id",
            2,
            "NULL::uuid",
            "changed.id",
        )))
        .bind(name)
        .bind(Pending::new(
            by,
            action::OPERATOR_DISABLED,
            json!({ "name": name }),
        ))
        .fetch_optional(&self.pool)
        .await?;
        Ok(disabled.is_some())
    }

    /// The operator (id, name) whose token hashes to this, unless disabled.
    pub async fn find_operator(&self, token_hash: &[u8; 32]) -> Result<Option<(Uuid, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, name FROM operators WHERE token_hash = $1 AND disabled_at IS NULL",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every operator as (id, name, created_at, disabled), oldest first.
    pub async fn list_operators(
        &self,
    ) -> Result<Vec<(Uuid, String, chrono::DateTime<chrono::Utc>, bool)>> {
        Ok(sqlx::query_as(
            "SELECT id, name, created_at, disabled_at IS NOT NULL FROM operators ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
