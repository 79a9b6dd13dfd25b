//! DNS resolution that drops addresses the target policy denies, so the addresses
//! checked are exactly the ones connected to (DNS rebinding cannot slip a private
//! address in after the URL was checked).

use std::net::SocketAddr;
use std::sync::Arc;

use hookrelay_core::target::TargetPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a name yielded nothing to connect to.
#[derive(Debug, thiserror::Error)]
#[error("blocked: {0} resolves only to private, loopback or reserved addresses")]
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
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        let allowed: Vec<SocketAddr> = all.into_iter().filter(|a| policy.permits(a.ip())).collect();
        if allowed.is_empty() {
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
        assert!(err.to_string().contains("blocked: localhost"), "{err}");
        let ok = GuardedResolver::lookup(&TargetPolicy::allow_everything(), "localhost")
            .await
            .expect("allowed");
        assert!(ok.iter().all(|a| a.ip().is_loopback()));
    }
}
