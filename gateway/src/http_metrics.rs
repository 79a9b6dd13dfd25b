//! HTTP metrics: every answered request counted and timed by its matched route
//! (the route's pattern, never the ids in it), method and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use hookrelay_core::metrics::{HTTP_DURATION, HTTP_REQUESTS};
use metrics::{counter, histogram};

/// Middleware for routed requests (installed with `route_layer`, so the matched
/// path is known).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    tracing::Span::current().record("route", route.as_str());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    tracing::debug!(status = %status, elapsed_ms = started.elapsed().as_millis() as u64, "answered");
    histogram!(HTTP_DURATION, "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status).increment(1);
    res
}
