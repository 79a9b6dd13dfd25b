//! Failed authentications per client address: past the configured number per
//! minute, an address is refused (`429`, even with good credentials) until its
//! allowance comes back, so guessing tokens is slow and a flood of bad ones costs
//! no database query.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
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
}

impl AuthFailures {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            blocked: Mutex::default(),
        }
    }

    fn key(address: Option<IpAddr>) -> IpAddr {
        address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses an address that has spent its failures: `Err(how long to wait)`.
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
