//! The contract in-process: the committed `openapi.json` is the generated one and
//! the one served.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use support::Api;
use tower::ServiceExt as _;

/// The committed `openapi.json` is the document the code generates, and the one
/// `GET /openapi.json` serves.
#[tokio::test]
async fn the_committed_openapi_json_is_the_served_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi.json at the repository root");
    let generated = hookrelay_gateway::openapi_json();
    assert!(
        committed == generated,
        "openapi.json is stale: regenerate it with `cargo run -q -p hookrelay -- openapi > openapi.json`"
    );
    let app = Api::fresh().await;
    let res = app
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/openapi.json")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let served = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .expect("body");
    assert_eq!(served, generated.as_bytes());
    let doc: Value = serde_json::from_str(&generated).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    assert_eq!(
        codes.as_array().map(Vec::len),
        Some(hookrelay_gateway::error::ErrorCode::ALL.len()),
        "{codes}"
    );
}
