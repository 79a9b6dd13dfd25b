//! The end-to-end tests' harness, one file each: `app` (the gateway and dispatcher
//! under test), `api` (requests to it), `subscriber` (the fake webhook endpoint), `processes` (the real
//! binary as a subprocess); and here what they share: where the services are,
//! and `eventually`, the one way a test waits for a condition.

mod api;
mod app;
mod processes;
mod subscriber;

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use base64::Engine as _;

pub use app::{Subscriber, TestApp};
pub use processes::{browser_test, encryption_keys, run_to_end, spawn_ready, stderr};
pub use subscriber::{Received, Receiver, verifies};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Upper bound for conditions a test waits for; reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Where tests create their databases (a role allowed to).
pub fn admin_database_url() -> String {
    std::env::var("HOOKRELAY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://hookrelay:hookrelay@127.0.0.1:5432/postgres".into())
}

pub fn amqp_url() -> String {
    std::env::var("HOOKRELAY_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connection and channel of the test's own on the broker, for faults.
pub async fn broker_channel() -> (lapin::Connection, lapin::Channel) {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

/// Polls `probe` until it gives `Ok` (its value is returned) and fails the test
/// after `PATIENCE`, naming `what` and the probe's last `Err` (what it saw).
pub async fn eventually<T, F, Fut>(what: impl Display, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(seen) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Base64, for tests that build secrets and keys.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
