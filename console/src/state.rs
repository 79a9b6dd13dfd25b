//! What every console handler shares: the store, the actions (the API's own when
//! mounted in a gateway), link and session signers, and the installation's settings.

use std::sync::Arc;

use hookrelay_core::actions::Actions;
use hookrelay_core::config::Sensitive;
use hookrelay_core::console_link::ConsoleLinks;
use hookrelay_core::queue::Topology;
use hookrelay_core::signed_token::Signer;
use hookrelay_core::target_policy::TargetPolicy;
use hookrelay_core::{Config, Store};

use crate::pkg;

#[derive(Clone)]
pub struct ConsoleState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    /// Replays, test events, secrets and keys: the same as the API's.
    pub actions: Actions,
    pub links: ConsoleLinks,
    pub sessions: Signer,
    pub admin_token: Option<Sensitive<String>>,
    pub topology: Topology,
    pub targets: TargetPolicy,
    pub max_endpoint_timeout: std::time::Duration,
    /// Cookies only over HTTPS: set when the public URL is `https`.
    pub secure_cookies: bool,
    /// Failed operator sign-ins per client address.
    pub sign_in_failures: hookrelay_core::auth_failures::AuthFailures,
    /// The islands' wasm build, when there is one.
    pub pkg: Option<Arc<pkg::Pkg>>,
}

impl std::ops::Deref for ConsoleState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl ConsoleState {
    /// The console over `store`, acting through `actions` (mounted in a gateway,
    /// the gateway's own, so both publish on one connection and share one key cache).
    pub fn new(config: &Config, store: Store, actions: Actions) -> Self {
        Self(Arc::new(Inner {
            store,
            actions,
            links: ConsoleLinks::new(&config.security.master_keys()),
            sessions: Signer::new(&config.security.master_keys(), "hookrelay console sessions"),
            admin_token: config.security.admin_token.clone(),
            topology: config.topology(),
            targets: config.target_policy(),
            max_endpoint_timeout: config.delivery.max_endpoint_timeout,
            pkg: pkg::Pkg::load(&config.console.pkg),
            sign_in_failures: hookrelay_core::auth_failures::AuthFailures::new(
                config.quotas.auth_failures_per_minute,
            ),
            secure_cookies: config
                .http
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
        }))
    }
}

/// The wasm build is all the `/console/pkg/` handlers need.
impl axum::extract::FromRef<ConsoleState> for Option<Arc<pkg::Pkg>> {
    fn from_ref(state: &ConsoleState) -> Self {
        state.pkg.clone()
    }
}
