//! Signed, expiring tokens (HMAC-SHA256): console links and console sessions. Each
//! master key gives a signing key per purpose, so a token made for one purpose is
//! refused for another. A token names the master key that signed it
//! (`key id.body.mac`), so tokens signed before a key rotation keep verifying
//! while their key is configured.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::crypto::MasterKeys;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Signer {
    /// (master key id, derived signing key), the current one first.
    keys: Vec<(String, Vec<u8>)>,
}

/// Which of the signer's keys made a token (for digests bound to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyIndex(usize);

impl KeyIndex {
    /// The current key, which signs new tokens.
    pub const CURRENT: KeyIndex = KeyIndex(0);
}

fn derive(secret: &[u8], purpose: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

impl Signer {
    pub fn new(keys: &MasterKeys, purpose: &str) -> Self {
        Self {
            keys: keys
                .iter()
                .map(|(id, key)| (id.to_string(), derive(key, purpose)))
                .collect(),
        }
    }

    fn mac(&self, k: KeyIndex) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.keys[k.0].1).expect("any key length")
    }

    /// `key id.base64(json).base64(mac)`, with the current key.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let id = &self.keys[0].0;
        let body = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac(KeyIndex(0));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("{id}.{body}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The claims of a token this signer made, if it is intact.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        self.verify_keyed(token).map(|(claims, _)| claims)
    }

    /// The claims and the key that signed them. Tokens from before key ids
    /// (`body.mac`) are checked against every key.
    pub fn verify_keyed<T: DeserializeOwned>(&self, token: &str) -> Option<(T, KeyIndex)> {
        let parts: Vec<&str> = token.split('.').collect();
        let (signed, body, sig, candidates): (String, &str, &str, Vec<KeyIndex>) =
            match parts.as_slice() {
                [id, body, sig] => {
                    let k = self.keys.iter().position(|(kid, _)| kid == id)?;
                    (format!("{id}.{body}"), body, sig, vec![KeyIndex(k)])
                }
                [body, sig] => (
                    (*body).to_string(),
                    body,
                    sig,
                    (0..self.keys.len()).map(KeyIndex).collect(),
                ),
                _ => return None,
            };
        let sig = B64.decode(sig).ok()?;
        let k = candidates.into_iter().find(|&k| {
            let mut mac = self.mac(k);
            mac.update(signed.as_bytes());
            mac.verify_slice(&sig).is_ok()
        })?;
        Some((serde_json::from_slice(&B64.decode(body).ok()?).ok()?, k))
    }

    /// A short keyed digest of `data` (e.g. a CSRF token bound to a session), with
    /// the key that signed the session, so it stays the same across a rotation.
    pub fn digest(&self, k: KeyIndex, data: &str) -> String {
        let mut mac = self.mac(k);
        mac.update(data.as_bytes());
        B64.encode(&mac.finalize().into_bytes()[..18])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[(&str, u8)]) -> MasterKeys {
        MasterKeys::new(
            list.iter()
                .map(|(id, b)| (id.to_string(), [*b; 32]))
                .collect(),
        )
    }

    #[test]
    fn tokens_verify_only_intact_and_for_their_purpose() {
        let a = Signer::new(&keys(&[("k1", 1)]), "links");
        let token = a.sign(&("tenant", 42));
        assert!(token.starts_with("k1."), "{token}");
        assert_eq!(
            a.verify::<(String, i32)>(&token),
            Some(("tenant".into(), 42))
        );
        let body_at = token.find('.').expect("dot") + 1;
        let mut forged = token.clone();
        let swap = if token[body_at..].starts_with('W') {
            "X"
        } else {
            "W"
        };
        forged.replace_range(body_at..body_at + 1, swap);
        assert_eq!(a.verify::<(String, i32)>(&forged), None);
        assert_eq!(
            Signer::new(&keys(&[("k1", 1)]), "sessions").verify::<(String, i32)>(&token),
            None
        );
        let (_, k) = a.verify_keyed::<(String, i32)>(&token).expect("valid");
        assert_eq!(a.digest(k, "x"), a.digest(k, "x"));
        assert_ne!(a.digest(k, "x"), a.digest(k, "y"));
    }

    #[test]
    fn tokens_outlive_a_rotation_while_their_key_is_configured() {
        let before = Signer::new(&keys(&[("k1", 1)]), "sessions");
        let token = before.sign(&7);
        let (_, k_before) = before.verify_keyed::<i32>(&token).expect("valid");
        let rotated = Signer::new(&keys(&[("k2", 2), ("k1", 1)]), "sessions");
        let (claims, k_after) = rotated.verify_keyed::<i32>(&token).expect("still valid");
        assert_eq!(claims, 7);
        assert_eq!(
            before.digest(k_before, "nonce"),
            rotated.digest(k_after, "nonce"),
            "its CSRF digest is unchanged"
        );
        assert!(
            rotated.sign(&7).starts_with("k2."),
            "new tokens use the new key"
        );
        let removed = Signer::new(&keys(&[("k2", 2)]), "sessions");
        assert_eq!(removed.verify::<i32>(&token), None, "gone with its key");
        // A k1 token relabelled as k2 is refused.
        assert_eq!(
            removed.verify::<i32>(&token.replacen("k1.", "k2.", 1)),
            None
        );
    }
}
