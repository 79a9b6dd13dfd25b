//! OpenTelemetry export: with `HOOKRELAY_OTLP_ENDPOINT`, the real `hookrelay serve`
//! sends its spans to an OTLP/HTTP receiver (here, in-process), and one event is one
//! trace: the producer's span, then the request, the ingest, the routing and the
//! attempt, each the child of the one before (routing and attempt of the ingest).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use crate::helpers::{Receiver, Subscriber, TestApp, eventually, spawn_ready};

type Spans = Arc<Mutex<Vec<Value>>>;

async fn collect(State(spans): State<Spans>, Json(body): Json<Value>) -> Json<Value> {
    let mut all = spans.lock().unwrap_or_else(|p| p.into_inner());
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            all.extend(ss["spans"].as_array().into_iter().flatten().cloned());
        }
    }
    Json(json!({}))
}

#[tokio::test]
async fn one_event_is_one_trace_from_the_producer_to_the_attempt() {
    let spans: Spans = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let otlp = format!("http://{}", listener.local_addr().expect("addr"));
    let app_spans = spans.clone();
    tokio::spawn(async move {
        let router = axum::Router::new()
            .route("/v1/traces", post(collect))
            .with_state(app_spans);
        let _ = axum::serve(listener, router).await;
    });

    let app = TestApp::builder().without_dispatcher().start().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let mut serve = app.hookrelay_command("serve");
    serve
        .env("HOOKRELAY_OTLP_ENDPOINT", &otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let (_serve, base) = spawn_ready(serve).await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let producer_span = "00f067aa0ba902b7";
    let res = app
        .http
        .post(format!("{base}/v1/tenants/{tenant}/events"))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{trace}-{producer_span}-01"))
        .json(&json!({ "event_type": "order.created", "payload": {} }))
        .send()
        .await
        .expect("ingest");
    assert_eq!(res.status(), 202);
    receiver.wait_for(1).await;

    let named = |name: &str| -> Option<Value> {
        spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|s| s["name"] == name && s["traceId"] == trace)
            .cloned()
    };
    let (request, ingest, routed, attempt) = eventually("every span of the trace", || async {
        match (
            named("request"),
            named("ingest"),
            named("routed"),
            named("attempt"),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => Ok((a, b, c, d)),
            _ => Err(format!(
                "{:?}",
                spans.lock().unwrap_or_else(|p| p.into_inner())
            )),
        }
    })
    .await;
    assert_eq!(request["parentSpanId"], producer_span, "{request}");
    assert_eq!(ingest["parentSpanId"], request["spanId"], "{ingest}");
    assert_eq!(routed["parentSpanId"], ingest["spanId"], "{routed}");
    assert_eq!(attempt["parentSpanId"], ingest["spanId"], "{attempt}");
}
