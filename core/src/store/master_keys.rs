//! Master keys in the database: the check value each key id left, a sample of
//! endpoint secrets to try at start, and the rows of a key rotation job.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, Store};
use crate::states::JobStatus;

/// One endpoint's ciphertexts: its secret and those still signing beside it.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredSecrets {
    pub id: Uuid,
    pub secret_ciphertext: Vec<u8>,
    pub previous_secrets: Vec<Vec<u8>>,
    /// Its request options' secret values, sealed.
    pub request_secrets: Option<Vec<u8>>,
}

/// A key rotation job's state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRotation {
    pub id: Uuid,
    pub key_id: String,
    /// `running` or `done`.
    pub status: JobStatus,
    pub cursor: Option<Uuid>,
    pub total: i64,
    pub done_count: i64,
    pub rewritten: i64,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const ROTATION_COLUMNS: &str =
    "id, key_id, status, cursor, total, done_count, rewritten, created_at, finished_at";

impl Store {
    /// The check value key `key_id` stored, if it ever did.
    pub async fn master_key_check(&self, key_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT check_value FROM master_key_checks WHERE key_id = $1")
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Keeps `value` as key `key_id`'s check, unless one is there already.
    pub async fn insert_master_key_check(&self, key_id: &str, value: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO master_key_checks (key_id, check_value) VALUES ($1, $2)
             ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(key_id)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The secrets of the `n` endpoints created last (deleted ones included: a
    /// replay may still sign with them).
    pub async fn newest_secrets(&self, n: i64) -> Result<Vec<StoredSecrets>> {
        Ok(sqlx::query_as(
            "SELECT id, secret_ciphertext, previous_secrets, request_secrets FROM endpoints
             ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(n)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The key rotation in progress, if any.
    pub async fn running_key_rotation(&self) -> Result<Option<KeyRotation>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROTATION_COLUMNS} FROM key_rotations WHERE status = 'running'"
        )))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The latest key rotation, running or done.
    pub async fn latest_key_rotation(&self) -> Result<Option<KeyRotation>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROTATION_COLUMNS} FROM key_rotations ORDER BY created_at DESC LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Starts a rotation to `key_id` over every endpoint there is now; `None` if
    /// another one is running (at most one runs at a time).
    pub async fn start_key_rotation(&self, key_id: &str) -> Result<Option<KeyRotation>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO key_rotations (id, key_id, total)
             SELECT $1, $2, (SELECT count(*) FROM endpoints)
             ON CONFLICT DO NOTHING RETURNING {ROTATION_COLUMNS}"
        )))
        .bind(crate::ids::new_id())
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// One chunk of a rotation, in one transaction: locks the next `limit`
    /// endpoints after the cursor, lets `rewrite` re-encrypt each one's secrets
    /// (`None`: already current), stores them and moves the cursor past them.
    /// Returns the job as it stands after the chunk (`done` when none were left).
    pub async fn rotate_key_chunk(
        &self,
        job: &KeyRotation,
        limit: i64,
        mut rewrite: impl FnMut(&StoredSecrets) -> std::result::Result<Option<StoredSecrets>, String>,
    ) -> Result<std::result::Result<KeyRotation, (Uuid, String)>> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<StoredSecrets> = sqlx::query_as(
            "SELECT id, secret_ciphertext, previous_secrets, request_secrets FROM endpoints
             WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2 FOR UPDATE",
        )
        .bind(job.cursor)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut rewritten = 0i64;
        for row in &rows {
            match rewrite(row) {
                Ok(Some(new)) => {
                    sqlx::query(
                        "UPDATE endpoints SET secret_ciphertext = $2, previous_secrets = $3, request_secrets = $4 WHERE id = $1",
                    )
                    .bind(row.id)
                    .bind(&new.secret_ciphertext)
                    .bind(&new.previous_secrets)
                    .bind(&new.request_secrets)
                    .execute(&mut *tx)
                    .await?;
                    rewritten += 1;
                }
                Ok(None) => {}
                Err(reason) => return Ok(Err((row.id, reason))),
            }
        }
        let done = rows.is_empty();
        let job: KeyRotation = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE key_rotations SET cursor = coalesce($2, cursor), done_count = done_count + $3,
                    rewritten = rewritten + $4, updated_at = now(),
                    status = CASE WHEN $5 THEN 'done' ELSE status END,
                    finished_at = CASE WHEN $5 THEN now() END,
                    total = greatest(total, done_count + $3)
              WHERE id = $1 RETURNING {ROTATION_COLUMNS}"
        )))
        .bind(job.id)
        .bind(rows.last().map(|r| r.id))
        .bind(rows.len() as i64)
        .bind(rewritten)
        .bind(done)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(job))
    }
}
