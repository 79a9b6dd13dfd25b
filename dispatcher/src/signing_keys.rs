//! The signing secrets of the endpoints this dispatcher sends to, decrypted once
//! per change of their ciphertexts (a rotation), not once per delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay_signature::Secret;
use uuid::Uuid;

struct Cached {
    current: Vec<u8>,
    previous: Vec<Vec<u8>>,
    secrets: Arc<[Secret]>,
    used: Instant,
}

#[derive(Default)]
pub struct SigningKeys {
    endpoints: Mutex<HashMap<Uuid, Cached>>,
}

impl SigningKeys {
    /// The secrets that sign `endpoint`'s requests, current first, decrypted only
    /// when the stored ciphertexts changed since the last delivery. `None` when the
    /// current secret cannot be read.
    pub fn get(
        &self,
        endpoint: Uuid,
        current: &[u8],
        previous: &[Vec<u8>],
        decrypt: impl Fn(&[u8]) -> Option<Secret>,
    ) -> Option<Arc<[Secret]>> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = endpoints
            .get_mut(&endpoint)
            .filter(|k| k.current == current && k.previous == previous)
        {
            k.used = Instant::now();
            return Some(k.secrets.clone());
        }
        let secrets: Arc<[Secret]> = std::iter::once(decrypt(current)?)
            .chain(previous.iter().filter_map(|c| decrypt(c)))
            .collect();
        endpoints.insert(
            endpoint,
            Cached {
                current: current.to_vec(),
                previous: previous.to_vec(),
                secrets: secrets.clone(),
                used: Instant::now(),
            },
        );
        Some(secrets)
    }

    /// Forgets the secrets of endpoints not sent to for `idle`; returns how many.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let before = endpoints.len();
        endpoints.retain(|_, k| k.used.elapsed() < idle);
        before - endpoints.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_keys_are_decrypted_again_only_when_they_change() {
        let keys = SigningKeys::default();
        let endpoint = Uuid::from_u128(1);
        let decrypted = std::cell::Cell::new(0);
        let decrypt = |c: &[u8]| {
            decrypted.set(decrypted.get() + 1);
            Secret::from_bytes(c.to_vec()).ok()
        };
        let (a, b) = (vec![1u8; 32], vec![2u8; 32]);
        let first = keys.get(endpoint, &a, &[], decrypt).expect("readable");
        let again = keys.get(endpoint, &a, &[], decrypt).expect("readable");
        assert_eq!((first.len(), again.len(), decrypted.get()), (1, 1, 1));
        let rotated = keys
            .get(endpoint, &b, std::slice::from_ref(&a), decrypt)
            .expect("readable");
        assert_eq!(rotated.len(), 2);
        assert_eq!(rotated[0].as_bytes(), &b[..]);
        assert_eq!(decrypted.get(), 3);
        assert!(
            keys.get(endpoint, &[0u8; 3], &[], decrypt).is_none(),
            "unreadable"
        );
        assert_eq!(keys.evict_idle(Duration::from_secs(3600)), 0);
        assert_eq!(keys.evict_idle(Duration::ZERO), 1, "unused since");
    }
}
