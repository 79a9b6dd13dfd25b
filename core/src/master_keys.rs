//! The master keys against what the database holds: the check a process makes
//! before it starts (a wrong key must not start and then fail every delivery),
//! and key rotation, which re-encrypts every endpoint secret under the current key.

use crate::crypto::{Cipher, CryptoError};
use crate::store::{KeyRotation, Store, StoreError, StoredSecrets};

/// What each key's check value says, encrypted by that key for this purpose.
const CHECK_PLAINTEXT: &[u8] = b"hookrelay master key check";
const CHECK_AAD: &[u8] = b"master_key_checks";
/// Endpoint secrets tried at start.
const SAMPLE: i64 = 32;
/// Endpoints re-encrypted per transaction.
const CHUNK: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "HOOKRELAY_ENCRYPTION_KEYS: key {0:?} is not the key that was stored under that id \
         before (its check value does not decrypt); give the original key that id, or the \
         new key another id"
    )]
    WrongKey(String),
    #[error(
        "HOOKRELAY_ENCRYPTION_KEYS: endpoint secrets are encrypted with key {0:?}, which is not \
         configured; add it back (after the current key) until `hookrelay keys rotate` is done"
    )]
    MissingKey(String),
    #[error(
        "HOOKRELAY_ENCRYPTION_KEY(S): none of the {0} newest endpoint secrets decrypts with the \
         configured keys; this is not the key this database was set up with"
    )]
    Undecryptable(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the configured keys against the database; records a check value for
/// each key id seen for the first time. Returns how many sampled secrets did not
/// decrypt (a warning when some do).
pub async fn check(store: &Store, cipher: &Cipher) -> Result<usize, KeyCheckError> {
    for id in cipher.key_ids() {
        match store.master_key_check(id).await? {
            Some(value) => {
                let plain = cipher.decrypt(&value, CHECK_AAD).ok();
                if Cipher::key_id_of(&value) != Some(id)
                    || plain.as_deref() != Some(CHECK_PLAINTEXT)
                {
                    return Err(KeyCheckError::WrongKey(id.to_string()));
                }
            }
            None => {
                // The sample below decides whether a new key can read what is stored.
            }
        }
    }
    let sample = store.newest_secrets(SAMPLE).await?;
    let mut failed = 0;
    for row in &sample {
        for ciphertext in std::iter::once(&row.secret_ciphertext).chain(&row.previous_secrets) {
            match cipher.decrypt(ciphertext, row.id.as_bytes()) {
                Ok(_) => {}
                Err(CryptoError::UnknownKey(id)) => return Err(KeyCheckError::MissingKey(id)),
                Err(CryptoError::Decrypt) => failed += 1,
            }
        }
    }
    if !sample.is_empty() && failed >= sample.len() {
        return Err(KeyCheckError::Undecryptable(sample.len()));
    }
    for id in cipher.key_ids() {
        if let Some(value) = cipher.encrypt_under(id, CHECK_PLAINTEXT, CHECK_AAD) {
            store.insert_master_key_check(id, &value).await?;
        }
    }
    Ok(failed)
}

/// Re-encrypts one endpoint's secrets under the current key; `None` when they
/// already are.
pub fn reencrypt(cipher: &Cipher, row: &StoredSecrets) -> Result<Option<StoredSecrets>, String> {
    let all = std::iter::once(&row.secret_ciphertext).chain(&row.previous_secrets);
    let request_current = row
        .request_secrets
        .as_ref()
        .is_none_or(|c| cipher.is_current(c));
    if request_current && all.clone().all(|c| cipher.is_current(c)) {
        return Ok(None);
    }
    let aad = row.id.as_bytes();
    let redo = |c: &Vec<u8>| -> Result<Vec<u8>, String> {
        if cipher.is_current(c) {
            return Ok(c.clone());
        }
        let plain = cipher.decrypt(c, aad).map_err(|e| e.to_string())?;
        Ok(cipher.encrypt(&plain, aad))
    };
    Ok(Some(StoredSecrets {
        id: row.id,
        secret_ciphertext: redo(&row.secret_ciphertext)?,
        previous_secrets: row
            .previous_secrets
            .iter()
            .map(redo)
            .collect::<Result<_, _>>()?,
        request_secrets: match &row.request_secrets {
            Some(sealed) => Some(
                crate::request_options::reseal(cipher, row.id, sealed)
                    .map_err(|e| e.to_string())?
                    .unwrap_or_else(|| sealed.clone()),
            ),
            None => None,
        },
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(
        "a rotation to key {running:?} is running; finish it with the configuration it \
         started with (HOOKRELAY_ENCRYPTION_KEYS first key {running:?}), not {current:?}"
    )]
    OtherKey { running: String, current: String },
    #[error("endpoint {0}'s secret cannot be re-encrypted: {1}")]
    Unreadable(uuid::Uuid, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Re-encrypts every endpoint secret under the current key, chunk by chunk,
/// resuming the rotation that is running if there is one; `progress` sees the
/// job after each chunk. When it returns, keys other than the current one are
/// no longer needed for stored secrets.
pub async fn rotate(
    store: &Store,
    cipher: &Cipher,
    mut progress: impl FnMut(&KeyRotation),
) -> Result<KeyRotation, RotateError> {
    let mut job = match store.running_key_rotation().await? {
        Some(job) => job,
        None => match store.start_key_rotation(cipher.current_id()).await? {
            Some(job) => job,
            // Another process started one between the two statements.
            None => store
                .running_key_rotation()
                .await?
                .ok_or_else(|| StoreError::Conflict("key rotation".into()))?,
        },
    };
    if job.key_id != cipher.current_id() {
        return Err(RotateError::OtherKey {
            running: job.key_id,
            current: cipher.current_id().to_string(),
        });
    }
    while job.status != crate::states::JobStatus::Done {
        job = store
            .rotate_key_chunk(&job, CHUNK, |row| reencrypt(cipher, row))
            .await?
            .map_err(|(id, reason)| RotateError::Unreadable(id, reason))?;
        progress(&job);
    }
    Ok(job)
}
