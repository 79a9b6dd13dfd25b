//! A dispatcher whose clock is off changes nothing: every time that gates work
//! (claims, parks, leases, retries) comes from the database's clock. The real
//! `hookrelay dispatcher` runs under libfaketime, two minutes ahead or behind.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Receiver, Subscriber, TestApp};

const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// `hookrelay dispatcher` for this test's database and queues, its clock shifted.
fn skewed_dispatcher(app: &TestApp, skew: &str) -> tokio::process::Child {
    assert!(
        std::path::Path::new(FAKETIME).exists(),
        "libfaketime is missing (Debian package faketime; deploy/local/test.sh installs it)"
    );
    app.dispatcher_command()
        .env("LD_PRELOAD", FAKETIME)
        .env("FAKETIME", skew)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("HOOKRELAY_RETRY_SCHEDULE", "3s")
        .spawn()
        .expect("start hookrelay dispatcher")
}

async fn retry_waits_its_time_with_the_clock(skew: &str) {
    let app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::failing_first(1).await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let mut dispatcher = skewed_dispatcher(&app, skew);
    let event = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": {} }))
        .await;
    let first = receiver.wait_for(1).await[0].at;
    let second = receiver.wait_for(2).await[1].at;
    let gap = second - first;
    // The 3 s delay is jittered by ±20 % (2.4 to 3.6 s); a skewed clock would make
    // it two minutes early or late.
    assert!(
        gap >= Duration::from_millis(2300) && gap < Duration::from_secs(12),
        "the 3 s retry came after {gap:?} with the clock {skew}"
    );
    app.wait_for_count(
        "SELECT count(*) FROM deliveries WHERE event_id = $1 AND status = 'delivered'",
        &event,
        1,
    )
    .await;
    // Attempts are stamped on the database's clock too.
    let off: f64 = sqlx::query_scalar(
        "SELECT max(abs(extract(epoch FROM created_at - now())))::float8 FROM attempts",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("attempts");
    assert!(
        off < 30.0,
        "attempt times are {off} s off the database's clock"
    );
    let started = Instant::now();
    dispatcher.kill().await.expect("stop the dispatcher");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_dispatcher_two_minutes_ahead_retries_on_time() {
    retry_waits_its_time_with_the_clock("+120").await;
}

#[tokio::test]
async fn a_dispatcher_two_minutes_behind_retries_on_time() {
    retry_waits_its_time_with_the_clock("-120").await;
}
