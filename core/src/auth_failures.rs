//! Failed authentications per client address: past the configured number per
//! minute, an address is refused (`429`) until its allowance comes back, so
//! guessing tokens is slow and a flood of bad ones costs no database query. A
//! credential already known to be valid is never refused for failures that others
//! behind the same address (a NAT, a proxy) made. IPv6 clients count per /64: one
//! host usually holds a whole prefix.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Addresses remembered before the limiter forgets those that are quiet again.
const SHRINK_AT: usize = 10_000;

pub struct AuthFailures {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over their allowance, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Hashes of operator tokens seen valid here (API keys are known to the key
    /// cache, the admin token to the config).
    known_good: Mutex<HashSet<[u8; 32]>>,
}

impl AuthFailures {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            blocked: Mutex::default(),
            known_good: Mutex::default(),
        }
    }

    /// What an address counts as: IPv4 (also when mapped into IPv6) as itself,
    /// IPv6 by its /64 prefix.
    fn key(address: Option<IpAddr>) -> IpAddr {
        match address {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            },
            Some(v4) => v4,
        }
    }

    /// Remembers an operator token that proved valid, so its holder is let through
    /// while its address is refused for others' failures.
    pub fn remember_good(&self, hash: [u8; 32]) {
        let mut good = self.known_good.lock().unwrap_or_else(|p| p.into_inner());
        if good.len() >= SHRINK_AT {
            good.clear();
        }
        good.insert(hash);
    }

    /// Forgets a token that is no longer valid (a disabled operator).
    pub fn forget_good(&self, hash: &[u8; 32]) {
        self.known_good
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }

    /// Whether this operator token proved valid here before.
    pub fn is_known_good(&self, hash: &[u8; 32]) -> bool {
        self.known_good
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(hash)
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses an address that has spent its failures: `Err(how long to wait)`.
    /// Callers skip this for a credential they know to be valid.
    pub fn check(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        let key = Self::key(address);
        let mut blocked = self.blocked();
        match blocked.get(&key) {
            Some(until) if *until > Instant::now() => Err(*until - Instant::now()),
            Some(_) => {
                blocked.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failure; `Some(how long to wait)` once the address is over its
    /// allowance (it is then refused until that has passed).
    pub fn failed(&self, address: Option<IpAddr>) -> Option<Duration> {
        if self.limiter.len() > SHRINK_AT {
            self.limiter.retain_recent();
        }
        let key = Self::key(address);
        match self.limiter.check_key(&key) {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let mut blocked = self.blocked();
                if blocked.len() > SHRINK_AT {
                    let now = Instant::now();
                    blocked.retain(|_, until| *until > now);
                }
                blocked.insert(key, Instant::now() + wait);
                Some(wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("address"))
    }

    #[test]
    fn an_ipv6_prefix_shares_one_allowance() {
        let limits = AuthFailures::new(2);
        assert_eq!(limits.failed(ip("2001:db8:1:2::1")), None);
        assert_eq!(limits.failed(ip("2001:db8:1:2:ffff::9")), None);
        assert!(limits.failed(ip("2001:db8:1:2:abcd::77")).is_some());
        assert!(limits.check(ip("2001:db8:1:2::42")).is_err(), "same /64");
        assert!(limits.check(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        assert!(limits.check(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let limits = AuthFailures::new(1);
        assert_eq!(limits.failed(ip("::ffff:192.0.2.7")), None);
        assert!(limits.failed(ip("192.0.2.7")).is_some());
        assert!(limits.check(ip("::ffff:192.0.2.7")).is_err());
    }

    #[test]
    fn known_good_tokens_are_remembered_until_forgotten() {
        let limits = AuthFailures::new(1);
        assert!(!limits.is_known_good(&[1; 32]));
        limits.remember_good([1; 32]);
        assert!(limits.is_known_good(&[1; 32]));
        limits.forget_good(&[1; 32]);
        assert!(!limits.is_known_good(&[1; 32]));
    }
}
