//! Standard Webhooks signatures: sign outgoing webhooks and verify incoming ones.
//!
//! A signature is `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>` where
//! `key` is the base64-decoded part of a `whsec_` secret. The `webhook-signature`
//! header holds one or more signatures separated by spaces (one per active secret
//! while a rotation overlaps); a message is authentic when any of them matches.
//! Comparison is constant-time and timestamps outside the tolerance are refused,
//! which stops replays of captured requests.
//!
//! # Verifying a delivery (subscriber side)
//! ```
//! use hookrelay_signature::{Secret, Verifier};
//!
//! let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let body = br#"{"test": 2432232314}"#;
//! // In a real receiver these three come from the request headers.
//! let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
//! let timestamp = "1614265330";
//! let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
//!
//! let verifier = Verifier::new(vec![secret]);
//! // `verify` checks the timestamp against the clock; `verify_at` takes "now" explicitly.
//! verifier.verify_at(id, timestamp, signature, body, 1614265330).unwrap();
//! assert!(verifier.verify_at(id, timestamp, signature, b"tampered", 1614265330).is_err());
//! ```
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Prefix of a serialized secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Signature scheme version written before each signature.
pub const VERSION: &str = "v1";
/// Default accepted clock skew between sender and verifier, in seconds (±5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;
/// Smallest and largest key sizes we generate and accept, in bytes.
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;

/// Names of the three Standard Webhooks headers.
pub mod headers {
    pub const ID: &str = "webhook-id";
    pub const TIMESTAMP: &str = "webhook-timestamp";
    pub const SIGNATURE: &str = "webhook-signature";
}

type HmacSha256 = Hmac<Sha256>;

/// Why a secret could not be parsed or a message could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("secret must start with `whsec_` followed by base64")]
    SecretFormat,
    #[error("secret key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")]
    SecretLength,
    #[error("timestamp header is not a unix time in seconds")]
    InvalidTimestamp,
    #[error("timestamp is too old")]
    TimestampTooOld,
    #[error("timestamp is too far in the future")]
    TimestampTooNew,
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// An HMAC key. Its `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// Parses a `whsec_<base64>` secret.
    pub fn from_whsec(s: &str) -> Result<Self, Error> {
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or(Error::SecretFormat)?;
        let key = BASE64.decode(encoded).map_err(|_| Error::SecretFormat)?;
        Self::from_bytes(key)
    }

    /// Wraps raw key bytes (24 to 64 of them).
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, Error> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(Error::SecretLength);
        }
        Ok(Self { key })
    }

    /// The `whsec_` form, as shown to the subscriber once.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// One signature, `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("{VERSION},{}", BASE64.encode(tag))
    }
}

/// The `webhook-signature` header value for a message signed by every given secret.
pub fn sign_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks incoming messages against one or more secrets.
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<Secret>,
    tolerance_secs: i64,
}

impl Verifier {
    pub fn new(secrets: Vec<Secret>) -> Self {
        Self { secrets, tolerance_secs: DEFAULT_TOLERANCE_SECS }
    }

    /// Accepted skew in seconds either side of now.
    pub fn with_tolerance_secs(mut self, secs: i64) -> Self {
        self.tolerance_secs = secs;
        self
    }

    /// Verifies against the system clock.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signature_header: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.verify_at(id, timestamp, signature_header, body, now)
    }

    /// Verifies with `now` (unix seconds) supplied by the caller.
    pub fn verify_at(
        &self,
        id: &str,
        timestamp: &str,
        signature_header: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), Error> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Error::InvalidTimestamp)?;
        // Saturating: any clock and tolerance a caller gives are checked, never overflow.
        if ts < now.saturating_sub(self.tolerance_secs) {
            return Err(Error::TimestampTooOld);
        }
        if ts > now.saturating_add(self.tolerance_secs) {
            return Err(Error::TimestampTooNew);
        }
        // Each entry is `version,base64`; unknown versions are skipped, as the spec asks.
        let candidates: Vec<Vec<u8>> = signature_header
            .split_whitespace()
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == VERSION)
            .filter_map(|(_, sig)| BASE64.decode(sig).ok())
            .collect();
        for secret in &self.secrets {
            for candidate in &candidates {
                // `verify_slice` compares in constant time.
                if secret.mac(id, ts, body).verify_slice(candidate).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(Error::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_clocks_and_tolerances_are_checked_without_overflow() {
        let secret = Secret::from_bytes(vec![1; 32]).expect("key");
        let header = secret.sign("msg_1", 0, b"{}");
        let wide = Verifier::new(vec![secret.clone()]).with_tolerance_secs(i64::MAX);
        assert!(
            wide.verify_at("msg_1", "0", &header, b"{}", i64::MAX)
                .is_ok()
        );
        // i64::MIN + i64::MAX is -1: a timestamp of 0 is a second ahead of it.
        assert_eq!(
            wide.verify_at("msg_1", "0", &header, b"{}", i64::MIN),
            Err(Error::TimestampTooNew)
        );
        let narrow = Verifier::new(vec![secret]);
        assert_eq!(
            narrow.verify_at("msg_1", "0", &header, b"{}", i64::MIN),
            Err(Error::TimestampTooNew)
        );
    }

    // Vector computed independently with Python:
    //   base64(hmac.new(b64decode(secret[6:]), b"{id}.{ts}.{body}", sha256).digest())
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> Secret {
        Secret::from_whsec(SECRET).expect("valid secret")
    }

    #[test]
    fn signs_the_reference_vector() {
        assert_eq!(secret().sign(ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn verifies_the_reference_vector() {
        Verifier::new(vec![secret()])
            .verify_at(ID, "1614265330", EXPECTED, BODY, TS)
            .expect("verifies");
    }

    #[test]
    fn rejects_tampered_body_id_and_timestamp() {
        let v = Verifier::new(vec![secret()]);
        assert_eq!(
            v.verify_at(ID, "1614265330", EXPECTED, b"{}", TS),
            Err(Error::NoMatchingSignature)
        );
        assert_eq!(
            v.verify_at("msg_other", "1614265330", EXPECTED, BODY, TS),
            Err(Error::NoMatchingSignature)
        );
        assert_eq!(
            v.verify_at(ID, "1614265331", EXPECTED, BODY, TS),
            Err(Error::NoMatchingSignature)
        );
    }

    #[test]
    fn enforces_timestamp_tolerance() {
        let v = Verifier::new(vec![secret()]);
        assert_eq!(
            v.verify_at(ID, "1614265330", EXPECTED, BODY, TS + 301),
            Err(Error::TimestampTooOld)
        );
        assert_eq!(
            v.verify_at(ID, "1614265330", EXPECTED, BODY, TS - 301),
            Err(Error::TimestampTooNew)
        );
        assert!(
            v.verify_at(ID, "1614265330", EXPECTED, BODY, TS + 300)
                .is_ok()
        );
        assert_eq!(
            v.verify_at(ID, "soon", EXPECTED, BODY, TS),
            Err(Error::InvalidTimestamp)
        );
    }

    #[test]
    fn accepts_any_matching_signature_in_the_header() {
        let old = secret();
        let new = Secret::from_bytes(vec![7u8; 32]).expect("valid key");
        let header = sign_header([&old, &new], ID, TS, BODY);
        assert_eq!(header.split(' ').count(), 2);
        // A subscriber that only knows either secret verifies the message.
        Verifier::new(vec![new.clone()])
            .verify_at(ID, "1614265330", &header, BODY, TS)
            .expect("new");
        Verifier::new(vec![old])
            .verify_at(ID, "1614265330", &header, BODY, TS)
            .expect("old");
        // Unknown versions and junk entries are ignored rather than failing the header.
        let noisy = format!("v2,abc garbage {header}");
        Verifier::new(vec![new])
            .verify_at(ID, "1614265330", &noisy, BODY, TS)
            .expect("noisy");
    }

    #[test]
    fn parses_and_round_trips_secrets() {
        assert_eq!(secret().to_whsec(), SECRET);
        assert_eq!(Secret::from_whsec("nope"), Err(Error::SecretFormat));
        assert_eq!(Secret::from_whsec("whsec_!!!"), Err(Error::SecretFormat));
        assert_eq!(Secret::from_whsec("whsec_AAAA"), Err(Error::SecretLength));
        assert!(!format!("{:?}", secret()).contains("MfKQ"));
    }
}
