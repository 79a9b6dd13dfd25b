//! Signed, expiring tokens (HMAC-SHA256): console links and console sessions. The
//! key is derived from the installation's encryption key and a purpose, so a token
//! made for one purpose is refused for another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(secret: &[u8], purpose: &str) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(purpose.as_bytes());
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("any key length"))
    }

    /// `base64(json).base64(mac)`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let body = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        format!("{body}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The claims of a token this signer made, if it is intact.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let (body, sig) = token.split_once('.')?;
        let sig = B64.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).ok()?;
        serde_json::from_slice(&B64.decode(body).ok()?).ok()
    }

    /// A short keyed digest of `data` (e.g. a CSRF token bound to a session).
    pub fn digest(&self, data: &str) -> String {
        let mut mac = self.mac();
        mac.update(data.as_bytes());
        B64.encode(&mac.finalize().into_bytes()[..18])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_intact_and_for_their_purpose() {
        let a = Signer::new(b"secret", "links");
        let token = a.sign(&("tenant", 42));
        assert_eq!(
            a.verify::<(String, i32)>(&token),
            Some(("tenant".into(), 42))
        );
        let mut forged = token.clone();
        forged.replace_range(0..1, if token.starts_with('W') { "X" } else { "W" });
        assert_eq!(a.verify::<(String, i32)>(&forged), None);
        assert_eq!(
            Signer::new(b"secret", "sessions").verify::<(String, i32)>(&token),
            None
        );
        assert_eq!(a.digest("x"), a.digest("x"));
        assert_ne!(a.digest("x"), a.digest("y"));
    }
}
