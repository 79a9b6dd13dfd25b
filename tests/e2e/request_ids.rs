//! Request ids and structured logs: `x-request-id` is kept (or made), returned and
//! stored with the events the request accepted; `HOOKRELAY_LOG_FORMAT=json` writes
//! one JSON object per line.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{PATIENCE, Receiver, Subscriber, TestApp};

#[tokio::test]
async fn request_ids_are_returned_and_stored_with_the_events() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let events = app.url(&format!("/v1/tenants/{tenant}/events"));
    let body = json!({ "event_type": "order.created", "payload": {} });

    let res = app
        .http
        .post(&events)
        .bearer_auth(&key)
        .header("x-request-id", "producer-req-42")
        .json(&body)
        .send()
        .await
        .expect("ingest");
    assert_eq!(res.headers()["x-request-id"], "producer-req-42");
    let given: Value = res.json().await.expect("json");

    let res = app
        .http
        .post(&events)
        .bearer_auth(&key)
        .header("x-request-id", "x".repeat(200))
        .json(&body)
        .send()
        .await
        .expect("ingest");
    let made = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(made.len(), 32, "a new id replaces one too long: {made}");
    let second: Value = res.json().await.expect("json");

    for (event, id) in [
        (&given["id"], "producer-req-42"),
        (&second["id"], made.as_str()),
    ] {
        let event = event.as_str().expect("id");
        app.settled_deliveries(&key, &tenant, event, 1).await;
        let (_, stored) = app
            .get(&format!("/v1/tenants/{tenant}/events/{event}"), &key)
            .await;
        assert_eq!(stored["request_id"], id, "{stored}");
    }
    let (status, _) = app.get("/v1/nothing", &key).await;
    assert_eq!(status, 404);
    let res = app
        .http
        .get(app.url("/v1/nothing"))
        .send()
        .await
        .expect("get");
    assert!(
        res.headers().contains_key("x-request-id"),
        "even a 404 has one"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let mut dispatcher = app
        .dispatcher_command()
        .env("HOOKRELAY_LOG", "info")
        .env("HOOKRELAY_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hookrelay dispatcher");
    let mut lines = BufReader::new(dispatcher.stderr.take().expect("stderr")).lines();
    let consuming = tokio::time::timeout(PATIENCE, async {
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            let parsed: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if parsed["fields"]["message"] == "dispatcher consuming" {
                return parsed;
            }
            seen.push(line);
        }
        panic!("the dispatcher ended; it wrote: {seen:?}")
    })
    .await
    .expect("the dispatcher logs that it consumes");
    assert_eq!(consuming["level"], "INFO", "{consuming}");
    assert!(consuming["timestamp"].is_string(), "{consuming}");
}
