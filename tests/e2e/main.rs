//! End-to-end tests of hookrelay against the real PostgreSQL and RabbitMQ: the API
//! on port 0, a database and a queue prefix of each test's own, receivers in-process.

mod helpers;

mod access;
mod access_fanout;
mod api;
mod api_docs;
mod audit;
mod bad_input;
mod cli;
mod clock;
mod console;
mod console_forms;
mod console_permissions;
mod controls;
mod credentials;
mod delivery;
mod dlq;
mod egress;
mod endpoint_actions;
mod engine;
mod health;
mod isolation;
mod lanes;
mod limits;
mod loadtest;
mod master_keys;
mod messages;
mod metrics;
mod mutual_tls;
mod ordering;
mod partitioning;
mod plans;
mod replay;
mod request_ids;
mod request_options;
mod restart;
mod retention;
mod retries;
mod retry_storm;
mod sessions;
mod slow_clients;
mod ssrf;
mod tenant_deletion;
mod tls;
mod traces;
