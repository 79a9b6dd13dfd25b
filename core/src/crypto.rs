//! Encryption at rest for endpoint secrets (AES-256-GCM, a fresh random nonce per value,
//! stored as `nonce || ciphertext`), and hashing of API keys.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("stored secret is malformed or was encrypted with another key")]
    Decrypt,
}

/// Encrypts and decrypts small secrets with the installation's key.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        // Encryption only fails for inputs of gigabytes; secrets are 64 bytes at most.
        let ciphertext = self
            .aead
            .encrypt(nonce, plaintext)
            .unwrap_or_else(|_| unreachable!("AES-GCM encrypts inputs below 64 GiB"));
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn decrypt(&self, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if stored.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        self.aead
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CryptoError::Decrypt)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_the_wrong_key() {
        let c = Cipher::new(&[9u8; 32]);
        let stored = c.encrypt(b"whsec_key");
        assert_ne!(&stored[NONCE_LEN..], b"whsec_key");
        assert_eq!(c.decrypt(&stored).expect("decrypts"), b"whsec_key");
        assert_ne!(c.encrypt(b"same"), c.encrypt(b"same"), "nonces differ");
        assert!(Cipher::new(&[8u8; 32]).decrypt(&stored).is_err());
        assert!(c.decrypt(b"short").is_err());
    }
}
