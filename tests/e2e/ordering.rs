//! Strict ordering: an ordered endpoint receives its events in acceptance order,
//! one request at a time, through a receiver failing at random and a dispatcher
//! killed mid-run; a dying head stops the endpoint with `on_dead: stop`; a replay
//! by hand goes out of band; neither a cancel nor a recover job makes a second
//! head. (`loadtest/scenarios/ordered.sh` runs the first at
//! full size.)

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Received, Receiver, Subscriber, TestApp, eventually};

/// Events in the suite's run; the scenario script sends 1,000.
const EVENTS: usize = 60;

fn seq(got: &Received) -> u64 {
    let body: Value = serde_json::from_slice(&got.body).expect("a JSON body");
    body["seq"].as_u64().expect("a sequence number")
}

/// The sequence numbers the receiver answered `200` to, a re-send of the same
/// delivery right after itself counted once (at least once: a dispatcher killed
/// after the request and before its record sends it again).
fn delivered_in_order(got: &[Received]) -> Vec<u64> {
    let mut seen: Vec<(String, u64)> = Vec::new();
    for r in got.iter().filter(|r| r.status == StatusCode::OK) {
        let id = r.header("webhook-id").to_string();
        if seen.last().is_some_and(|(last, _)| *last == id) {
            continue;
        }
        seen.push((id, seq(r)));
    }
    seen.into_iter().map(|(_, n)| n).collect()
}

async fn ordered(app: &TestApp, s: &Subscriber, on_dead: &str) {
    let (status, body) = app
        .patch(
            &format!("/v1/tenants/{}/endpoints/{}", s.tenant, s.endpoint),
            &s.key,
            json!({ "ordering": "strict", "on_dead": on_dead }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ordering"], "strict");
}

/// An ordered endpoint answering after `delay`, `events` events for it, and its
/// head's request open.
async fn head_in_flight(delay: Duration, events: u64) -> (TestApp, Receiver, Subscriber) {
    let app = TestApp::spawn().await;
    let receiver = Receiver::slow(delay).await;
    let s = app.subscriber(&receiver.url).await;
    ordered(&app, &s, "release").await;
    for n in 0..events {
        let body = json!({ "event_type": "order.updated", "payload": { "seq": n } });
        app.event(&s.key, &s.tenant, body).await;
    }
    receiver.wait_for_open(1).await;
    (app, receiver, s)
}

#[tokio::test]
async fn an_ordered_endpoint_receives_in_acceptance_order_through_failures_and_a_kill() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::flaky(0.3).await;
    let s = app.subscriber(&receiver.url).await;
    ordered(&app, &s, "release").await;
    let dispatcher = |name: &str| {
        app.dispatcher_command()
            .env("HOOKRELAY_RETRY_SCHEDULE", "50ms")
            .env("HOOKRELAY_MAX_ATTEMPTS", "40")
            .env("HOOKRELAY_SHARD_HEARTBEAT", "500ms")
            .env("HOOKRELAY_LOG", format!("warn,{name}=warn"))
            .spawn()
            .expect("start hookrelay dispatcher")
    };
    let mut first = dispatcher("first");
    let _second = dispatcher("second");
    for n in 0..EVENTS {
        let body = json!({ "event_type": "order.updated", "payload": { "seq": n } });
        app.event(&s.key, &s.tenant, body).await;
        if n == EVENTS / 3 {
            // Mid-run, whatever it holds: a request, a claim, an unacked message.
            first.kill().await.expect("kill -9 the first dispatcher");
        }
    }
    // A head claimed by the killed dispatcher waits for its claim to lapse (30 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        let delivered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE endpoint_id = $1::uuid AND status = 'delivered'",
        )
        .bind(&s.endpoint)
        .fetch_one(app.store.pool())
        .await
        .expect("count");
        if delivered == EVENTS as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{delivered} of {EVENTS} delivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = receiver.received();
    let order = delivered_in_order(&got);
    assert_eq!(
        order,
        (0..EVENTS as u64).collect::<Vec<_>>(),
        "successful requests out of order or missing"
    );
    assert!(
        got.iter().any(|r| r.status != StatusCode::OK),
        "the receiver never failed"
    );
    assert_eq!(receiver.max_concurrency(), 1, "one request at a time");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts WHERE out_of_band")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert_eq!(attempts, 0);
}

#[tokio::test]
async fn a_dead_head_stops_the_endpoint_until_it_is_resumed_and_a_replay_goes_out_of_band() {
    let app = TestApp::builder()
        .config(|c| {
            c.retry.schedule = vec![Duration::from_millis(50)];
            c.retry.max_attempts = Some(2);
        })
        .start()
        .await;
    // The first two requests fail: the head (seq 0) dies after its two attempts.
    let receiver = Receiver::failing_first(2).await;
    let s = app.subscriber(&receiver.url).await;
    ordered(&app, &s, "stop").await;
    for n in 0..3 {
        let body = json!({ "event_type": "order.updated", "payload": { "seq": n } });
        app.event(&s.key, &s.tenant, body).await;
    }
    let endpoint_path = format!("/v1/tenants/{}/endpoints/{}", s.tenant, s.endpoint);
    let stopped = eventually("the endpoint stops when its head dies", || async {
        let (_, e) = app.get(&endpoint_path, &s.key).await;
        if e["paused"] == true {
            Ok(e)
        } else {
            Err(e.to_string())
        }
    })
    .await;
    let reason = stopped["paused_reason"].as_str().expect("a reason");
    assert!(reason.contains("on_dead: stop"), "{reason}");
    let (_, backlog) = app.get(&format!("{endpoint_path}/backlog"), &s.key).await;
    assert_eq!(backlog["waiting"], 2, "{backlog}");
    assert_eq!(backlog["paused"], true);
    assert_eq!(receiver.received().len(), 2, "nothing else was sent");
    // Held deliveries say so on their own page.
    let (_, list) = app
        .get(
            &format!("/v1/tenants/{}/deliveries?status=pending", s.tenant),
            &s.key,
        )
        .await;
    let held: Vec<&Value> = list["data"].as_array().expect("a page").iter().collect();
    assert_eq!(held.len(), 2, "{list}");
    assert!(held.iter().all(|d| d["held"] == true), "{list}");

    // The customer replays the dead one by hand: it goes out of band, marked so.
    let (_, dead) = app
        .get(
            &format!("/v1/tenants/{}/deliveries?status=dead", s.tenant),
            &s.key,
        )
        .await;
    let dead_id = dead["data"][0]["id"]
        .as_str()
        .expect("a dead delivery")
        .to_string();
    let (_, _) = app
        .patch(&endpoint_path, &s.key, json!({ "paused": false }))
        .await;
    let (status, _) = app
        .post(
            &format!("/v1/tenants/{}/deliveries/{dead_id}/replay", s.tenant),
            &s.key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = receiver.wait_for(5).await;
    let oks: Vec<u64> = got
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .map(seq)
        .collect();
    let mut sorted = oks.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![0, 1, 2], "{oks:?}");
    // 1 before 2, whenever the replayed 0 went.
    let pos = |n| oks.iter().position(|x| *x == n).expect("sent");
    assert!(pos(1) < pos(2), "{oks:?}");
    let out_of_band: Vec<bool> = sqlx::query_scalar(
        "SELECT a.out_of_band FROM attempts a WHERE a.delivery_id = $1::uuid ORDER BY a.id",
    )
    .bind(&dead_id)
    .fetch_all(app.store.pool())
    .await
    .expect("attempts");
    assert_eq!(out_of_band, vec![false, false, true]);
    // hookrelay's own stop is in the audit log, by `system`.
    let (_, stops) = app
        .get(
            &format!("/v1/tenants/{}/audit?action=endpoint.paused", s.tenant),
            &s.key,
        )
        .await;
    assert_eq!(stops["data"][0]["actor_kind"], "system", "{stops}");
    assert_eq!(stops["data"][0]["details"]["delivery"], dead_id, "{stops}");
    // Resuming is in the audit log, and the stop cleared.
    let (_, audit) = app
        .get(
            &format!("/v1/tenants/{}/audit?action=endpoint.resumed", s.tenant),
            &s.key,
        )
        .await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(1), "{audit}");
}

#[tokio::test]
async fn a_head_cancelled_in_flight_holds_the_line_until_its_attempt_ends() {
    let (app, receiver, s) = head_in_flight(Duration::from_millis(1500), 2).await;
    let head: String = sqlx::query_scalar(
        "SELECT id::text FROM deliveries WHERE endpoint_id = $1::uuid AND claimed_until > now()",
    )
    .bind(&s.endpoint)
    .fetch_one(app.store.pool())
    .await
    .expect("the head in flight");
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{}/deliveries/{head}/cancel", s.tenant),
            &s.key,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");
    // The next goes once the cancelled head's request is over, not beside it.
    let got = receiver.wait_for(2).await;
    assert_eq!(got.iter().map(seq).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(receiver.max_concurrency(), 1, "two requests at once");
}

#[tokio::test]
async fn a_recover_job_leaves_the_head_in_flight_the_head() {
    let (app, receiver, s) = head_in_flight(Duration::from_secs(3), 3).await;
    // Every open delivery is in the recover window, the head in flight among them.
    let (status, job) = app
        .post(
            &format!("/v1/tenants/{}/endpoints/{}/recover", s.tenant, s.endpoint),
            &s.key,
            json!({ "since": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job_path = format!("/v1/jobs/{}", job["id"].as_str().expect("a job id"));
    eventually("the recover job is done", || async {
        let (_, j) = app.get(&job_path, &s.key).await;
        if j["status"] == "done" {
            Ok(())
        } else {
            Err(j.to_string())
        }
    })
    .await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got.iter().map(seq).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(receiver.max_concurrency(), 1, "two requests at once");
}
