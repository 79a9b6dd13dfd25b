//! Per-tenant ingest rate limits, held by each gateway in memory: a tenant over its
//! rate is refused (`429` with `retry-after`) before anything is published. The
//! rate is the tenant's own `ingest_rate`, or `HOOKRELAY_TENANT_INGEST_RATE`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::RwLock;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hookrelay_core::model::Tenant;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

pub struct IngestQuotas {
    default_rate: u32,
    limiters: RwLock<HashMap<Uuid, (u32, DefaultDirectRateLimiter)>>,
}

impl IngestQuotas {
    pub fn new(default_rate: u32) -> Self {
        Self { default_rate, limiters: RwLock::default() }
    }

    /// Takes `n` events from the tenant's allowance, or refuses them all.
    pub fn take(&self, tenant: &Tenant, n: usize) -> ApiResult<()> {
        let rate = tenant
            .ingest_rate
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(self.default_rate);
        let Some(per_second) = NonZeroU32::new(rate) else {
            return Ok(());
        };
        let cells =
            NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let outcome = {
            let limiters = self.limiters.read().unwrap_or_else(|p| p.into_inner());
            match limiters.get(&tenant.id) {
                Some((r, limiter)) if *r == rate => Some(limiter.check_n(cells)),
                _ => None,
            }
        };
        let outcome = match outcome {
            Some(o) => o,
            None => {
                let mut limiters = self.limiters.write().unwrap_or_else(|p| p.into_inner());
                let (_, limiter) = limiters
                    .entry(tenant.id)
                    .and_modify(|e| {
                        if e.0 != rate {
                            *e = (rate, RateLimiter::direct(Quota::per_second(per_second)));
                        }
                    })
                    .or_insert_with(|| (rate, RateLimiter::direct(Quota::per_second(per_second))));
                limiter.check_n(cells)
            }
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(ApiError::rate_limited(
                format!("this tenant may ingest {rate} events per second; retry later"),
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            Err(_) => Err(ApiError::rate_limited(
                format!(
                    "a batch of {n} events is more than this tenant's {rate} events per second"
                ),
                std::time::Duration::from_secs(1),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(rate: Option<i32>) -> Tenant {
        Tenant {
            id: Uuid::nil(),
            uid: None,
            name: "t".into(),
            ingest_rate: rate,
            max_endpoints: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_tenant_gets_a_seconds_worth_then_is_refused_with_a_wait() {
        let quotas = IngestQuotas::new(0);
        for _ in 0..100 {
            assert!(
                quotas.take(&tenant(None), 10).is_ok(),
                "no default: no limit"
            );
        }
        let t = tenant(Some(5));
        assert!(quotas.take(&t, 5).is_ok());
        let e = quotas.take(&t, 1).expect_err("over the rate");
        assert_eq!(e.code, crate::error::ErrorCode::RateLimited);
        assert!(e.retry_after.is_some_and(|s| s >= 1));
        let e = quotas.take(&t, 6).expect_err("more than a second's worth");
        assert!(e.message.contains("batch of 6"), "{}", e.message);
    }
}
