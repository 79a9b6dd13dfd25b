//! The console's pages, one module per page or small group: signing in, the
//! customer's endpoints, forms, events, deliveries and jobs, and the operator's
//! dead letters, fleet, tenants, keys, audit log and open sessions. `progress` answers the live islands.

pub mod accounts;
pub mod audit;
pub mod dead_letters;
pub mod deliveries;
pub mod endpoint_controls;
pub mod endpoint_forms;
pub mod endpoint_reach;
pub mod endpoints;
pub mod events;
pub mod fleet;
pub mod jobs;
pub mod progress;
pub mod sessions;
pub mod sign_in;
