//! hookrelay-core: what every hookrelay process shares — configuration, ids, domain
//! types, the Postgres store, the RabbitMQ topology and telemetry.
#![forbid(unsafe_code)]

pub mod config;
pub mod crypto;
pub mod event_type;
pub mod ids;
pub mod model;
pub mod queue;
pub mod retry;
pub mod rules;
pub mod signed;
pub mod store;
pub mod target;
pub mod telemetry;

pub use config::Config;
pub use store::Store;
