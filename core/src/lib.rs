//! hookrelay-core: what every hookrelay process shares — configuration, ids, domain
//! types, validation, the Postgres store, the RabbitMQ topology, the actions the API
//! and the console both offer, and telemetry.
#![forbid(unsafe_code)]

pub mod access;
pub mod actions;
pub mod audit;
pub mod auth_failures;
pub mod config;
pub mod console_link;
pub mod crypto;
pub mod event_type;
pub mod filter;
pub mod gauges;
pub mod ids;
pub mod key_cache;
pub mod master_keys;
pub mod metrics;
pub mod model;
pub mod operational;
pub mod queue;
pub mod refresh;
pub mod request_options;
pub mod retry;
pub mod signed_token;
pub mod states;
pub mod store;
pub mod target_policy;
pub mod telemetry;
pub mod time;
pub mod validation;

pub use config::Config;
pub use store::Store;
