//! DNS resolution that drops addresses the target policy denies, so the addresses
//! checked are exactly the ones connected to (DNS rebinding cannot slip a private
//! address in after the URL was checked).

use std::net::SocketAddr;
use std::sync::Arc;

use hookrelay_core::target_policy::TargetPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a name yielded nothing to connect to. A name that resolves only to denied
/// addresses reads exactly like one that does not resolve, so an endpoint's
/// attempts never tell a tenant which internal names exist (the log says which).
#[derive(Debug, thiserror::Error)]
#[error("could not resolve {0}")]
pub struct Blocked(pub String);

pub struct GuardedResolver {
    policy: Arc<TargetPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<TargetPolicy>) -> Self {
        Self { policy }
    }

    /// Resolves `host` with the system resolver and keeps the permitted addresses.
    pub async fn lookup(
        policy: &TargetPolicy,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let all: Vec<SocketAddr> = match tokio::net::lookup_host((host, 0)).await {
            Ok(all) => all.collect(),
            Err(e) => {
                tracing::debug!(host, error = %e, "a delivery target does not resolve");
                return Err(Box::new(Blocked(host.to_string())));
            }
        };
        let allowed: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| policy.permits(a.ip()))
            .collect();
        if allowed.is_empty() {
            tracing::info!(host, addresses = ?all, "refused a delivery target: it resolves only to denied addresses");
            return Err(Box::new(Blocked(host.to_string())));
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs = Self::lookup(&policy, name.as_str()).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_when_the_guard_is_on() {
        // `localhost` resolves through the system resolver (/etc/hosts) to loopback.
        let err = GuardedResolver::lookup(&TargetPolicy::default(), "localhost")
            .await
            .expect_err("refused");
        let unknown = GuardedResolver::lookup(&TargetPolicy::default(), "no-such-host.invalid")
            .await
            .expect_err("unresolvable");
        // Denied and unresolvable read the same: no oracle for internal names.
        assert_eq!(err.to_string(), "could not resolve localhost");
        assert_eq!(
            unknown.to_string(),
            "could not resolve no-such-host.invalid"
        );
        let ok = GuardedResolver::lookup(&TargetPolicy::allow_everything(), "localhost")
            .await
            .expect("allowed");
        assert!(ok.iter().all(|a| a.ip().is_loopback()));
    }
}
