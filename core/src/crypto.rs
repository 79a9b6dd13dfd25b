//! Encryption at rest for endpoint secrets (AES-256-GCM, a fresh random nonce per
//! value) under a ring of master keys with ids, and hashing of API keys.
//!
//! A ciphertext is `0x01 || id length || key id || nonce || ciphertext+tag`, with the
//! header and the row's own id (the endpoint's) as associated data, so it names the
//! key that made it and cannot be moved to another row. The first key of the ring
//! encrypts; any key decrypts what it made. Values stored before key ids existed
//! (`nonce || ciphertext`, no associated data) still decrypt, with any key.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, SecuritySettings};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const FORMAT: u8 = 1;
/// Key ids: 1 to 32 of `A-Z a-z 0-9 _ -`.
pub const MAX_KEY_ID_LEN: usize = 32;
/// The id of the key `HOOKRELAY_ENCRYPTION_KEY` gives.
pub const DEFAULT_KEY_ID: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("stored secret is malformed or was encrypted with another key")]
    Decrypt,
    #[error("stored secret was encrypted with key {0:?}, which is not configured")]
    UnknownKey(String),
}

/// Whether `id` may name a key.
pub fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The installation's master keys, the first one current; cheap to clone.
#[derive(Clone)]
pub struct MasterKeys(Arc<Vec<(String, [u8; 32])>>);

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

impl MasterKeys {
    /// `keys` in order, the first current; empty or repeated ids are the caller's
    /// mistake (config rejects them).
    pub fn new(keys: Vec<(String, [u8; 32])>) -> Self {
        assert!(!keys.is_empty(), "at least one master key");
        Self(Arc::new(keys))
    }

    /// One key, named `default` (`HOOKRELAY_ENCRYPTION_KEY`).
    pub fn single(key: &[u8; 32]) -> Self {
        Self::new(vec![(DEFAULT_KEY_ID.to_string(), *key)])
    }

    pub fn current_id(&self) -> &str {
        &self.0[0].0
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(id, _)| id.as_str())
    }

    /// Each key with its id, the current one first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8; 32])> {
        self.0.iter().map(|(id, key)| (id.as_str(), key))
    }
}

/// Encrypts and decrypts small secrets with the installation's master keys.
#[derive(Clone)]
pub struct Cipher {
    keys: Arc<Vec<(String, Aes256Gcm)>>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

/// A ciphertext's parts.
enum Stored<'a> {
    Keyed {
        header: &'a [u8],
        id: &'a str,
        nonce: &'a [u8],
        body: &'a [u8],
    },
    Legacy,
}

fn parse(stored: &[u8]) -> Stored<'_> {
    let Some((&FORMAT, rest)) = stored.split_first() else {
        return Stored::Legacy;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return Stored::Legacy;
    };
    let n = usize::from(n);
    if rest.len() < n + NONCE_LEN + TAG_LEN {
        return Stored::Legacy;
    }
    match std::str::from_utf8(&rest[..n]) {
        Ok(id) if valid_key_id(id) => Stored::Keyed {
            header: &stored[..2 + n],
            id,
            nonce: &rest[n..n + NONCE_LEN],
            body: &rest[n + NONCE_LEN..],
        },
        _ => Stored::Legacy,
    }
}

impl Cipher {
    /// A cipher with one key (id `default`), as `HOOKRELAY_ENCRYPTION_KEY` gives.
    pub fn new(key: &[u8; 32]) -> Self {
        Self::with_keys(&MasterKeys::single(key))
    }

    pub fn with_keys(keys: &MasterKeys) -> Self {
        Self {
            keys: Arc::new(
                keys.iter()
                    .map(|(id, key)| (id.to_string(), Aes256Gcm::new(key.into())))
                    .collect(),
            ),
        }
    }

    pub fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// Encrypts under the current key, bound to `aad` (the owning row's id).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        self.seal(&self.keys[0], plaintext, aad)
    }

    /// Encrypts under the key `key_id` names (`None`: no such key).
    pub fn encrypt_under(&self, key_id: &str, plaintext: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let key = self.keys.iter().find(|(id, _)| id == key_id)?;
        Some(self.seal(key, plaintext, aad))
    }

    fn seal(&self, (id, aead): &(String, Aes256Gcm), plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT);
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        let header_len = out.len();
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        out.extend_from_slice(&nonce_bytes);
        let mut bound = out[..header_len].to_vec();
        bound.extend_from_slice(aad);
        // Encryption only fails for inputs of gigabytes; secrets are 64 bytes at most.
        let ciphertext = aead
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload { msg: plaintext, aad: &bound },
            )
            .expect("AES-GCM encrypts inputs below 64 GiB");
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts what any configured key encrypted for the row `aad` names.
    pub fn decrypt(&self, stored: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if let Stored::Keyed { header, id, nonce, body } = parse(stored) {
            let mut bound = header.to_vec();
            bound.extend_from_slice(aad);
            let payload = || Payload { msg: body, aad: &bound };
            if let Some((_, aead)) = self.keys.iter().find(|(k, _)| k == id) {
                return aead
                    .decrypt(Nonce::from_slice(nonce), payload())
                    .map_err(|_| CryptoError::Decrypt);
            }
            // Another name for one of our keys (ids are labels; the tag decides).
            if let Some(plain) = self
                .keys
                .iter()
                .find_map(|(_, aead)| aead.decrypt(Nonce::from_slice(nonce), payload()).ok())
            {
                return Ok(plain);
            }
            return self
                .decrypt_legacy(stored)
                .map_err(|_| CryptoError::UnknownKey(id.to_string()));
        }
        self.decrypt_legacy(stored)
    }

    fn decrypt_legacy(&self, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if stored.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        self.keys
            .iter()
            .find_map(|(_, aead)| aead.decrypt(Nonce::from_slice(nonce), ciphertext).ok())
            .ok_or(CryptoError::Decrypt)
    }

    /// Whether `stored` is already encrypted under the current key (with a key id
    /// and associated data); what key rotation skips.
    pub fn is_current(&self, stored: &[u8]) -> bool {
        matches!(parse(stored), Stored::Keyed { id, .. } if id == self.current_id())
    }

    /// The key id a ciphertext names; `None` for one stored before key ids.
    pub fn key_id_of(stored: &[u8]) -> Option<&str> {
        match parse(stored) {
            Stored::Keyed { id, .. } => Some(id),
            Stored::Legacy => None,
        }
    }
}

/// Prefix of producer keys, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "hr_";
/// How many leading characters of a key are kept to tell keys apart in lists.
const KEY_HINT_LEN: usize = 8;

/// A new producer key: prefix + 256 random bits.
pub fn generate_api_key() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The start of a key, safe to show (a few of its 256 random bits), e.g. `hr_Ab3x…`.
pub fn api_key_hint(key: &str) -> String {
    let start: String = key.chars().take(KEY_HINT_LEN).collect();
    format!("{start}…")
}

/// SHA-256 of an API key. Keys carry 256 random bits, so a fast hash is enough:
/// there is nothing to brute-force that a slow hash would protect.
pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The master keys the settings name: `HOOKRELAY_ENCRYPTION_KEYS` (ids must be
/// unique) and `HOOKRELAY_ENCRYPTION_KEY` (id `default`, the same key if both name it).
impl SecuritySettings {
    /// The master keys in effect, the current one first.
    pub fn master_keys(&self) -> MasterKeys {
        self.checked_master_keys()
            .expect("checked when the settings were read")
    }

    pub(crate) fn checked_master_keys(&self) -> Result<MasterKeys, ConfigError> {
        let invalid = |reason: String| ConfigError::setting("encryption_keys", reason);
        let mut keys: Vec<(String, [u8; 32])> = self
            .encryption_keys
            .iter()
            .map(|k| k.expose().clone())
            .collect();
        for (i, (id, _)) in keys.iter().enumerate() {
            if keys[..i].iter().any(|(other, _)| other == id) {
                return Err(invalid(format!("key id {id:?} appears twice")));
            }
        }
        if let Some(key) = &self.encryption_key {
            let id = DEFAULT_KEY_ID;
            match keys.iter().find(|(other, _)| other == id) {
                Some((_, same)) if same == key.expose() => {}
                Some(_) => {
                    let key = crate::config::env_name("encryption_key");
                    return Err(invalid(format!("key id {id:?} differs from {key}")));
                }
                None => keys.push((id.to_string(), *key.expose())),
            }
        }
        if keys.is_empty() {
            let keys = crate::config::env_name("encryption_keys");
            let why = format!(
                "is required (or {keys}): base64 of 32 random bytes (openssl rand -base64 32)"
            );
            return Err(ConfigError::setting("encryption_key", why));
        }
        Ok(MasterKeys::new(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = nonce.to_vec();
        out.extend(
            Aes256Gcm::new(key.into())
                .encrypt(Nonce::from_slice(&nonce), plaintext)
                .expect("encrypts"),
        );
        out
    }

    #[test]
    fn round_trips_and_detects_the_wrong_key_or_row() {
        let c = Cipher::new(&[9u8; 32]);
        let stored = c.encrypt(b"whsec_key", b"row-1");
        assert_eq!(Cipher::key_id_of(&stored), Some("default"));
        assert!(!stored.windows(9).any(|w| w == b"whsec_key"));
        assert_eq!(
            c.decrypt(&stored, b"row-1").expect("decrypts"),
            b"whsec_key"
        );
        assert!(c.decrypt(&stored, b"row-2").is_err(), "bound to its row");
        assert_ne!(
            c.encrypt(b"same", b"r"),
            c.encrypt(b"same", b"r"),
            "nonces differ"
        );
        assert!(Cipher::new(&[8u8; 32]).decrypt(&stored, b"row-1").is_err());
        assert!(c.decrypt(b"short", b"row-1").is_err());
    }

    #[test]
    fn the_first_key_encrypts_and_any_decrypts() {
        let old = MasterKeys::new(vec![("k1".into(), [1; 32])]);
        let both = MasterKeys::new(vec![("k2".into(), [2; 32]), ("k1".into(), [1; 32])]);
        let before = Cipher::with_keys(&old).encrypt(b"secret", b"e");
        let ring = Cipher::with_keys(&both);
        assert_eq!(
            ring.decrypt(&before, b"e").expect("old key decrypts"),
            b"secret"
        );
        assert!(!ring.is_current(&before));
        let after = ring.encrypt(b"secret", b"e");
        assert_eq!(Cipher::key_id_of(&after), Some("k2"));
        assert!(ring.is_current(&after));
        let e = Cipher::with_keys(&old)
            .decrypt(&after, b"e")
            .expect_err("k2 is gone");
        assert!(
            matches!(e, CryptoError::UnknownKey(ref id) if id == "k2"),
            "{e}"
        );
    }

    #[test]
    fn values_stored_before_key_ids_still_decrypt() {
        let stored = legacy(&[3; 32], b"whsec_old");
        let ring = Cipher::with_keys(&MasterKeys::new(vec![
            ("new".into(), [4; 32]),
            ("old".into(), [3; 32]),
        ]));
        assert_eq!(
            ring.decrypt(&stored, b"any row").expect("decrypts"),
            b"whsec_old"
        );
        assert!(!ring.is_current(&stored));
        assert!(Cipher::new(&[5; 32]).decrypt(&stored, b"x").is_err());
    }

    #[test]
    fn key_ids_are_short_and_plain() {
        assert!(valid_key_id("k2026-12_a"));
        assert!(!valid_key_id(""));
        assert!(!valid_key_id("has space"));
        assert!(!valid_key_id(&"x".repeat(33)));
    }
}
