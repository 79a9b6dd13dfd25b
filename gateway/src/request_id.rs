//! Request ids: `x-request-id` taken from the request when it is a plausible id
//! (1 to 128 visible ASCII characters), generated otherwise; returned on the
//! response, carried by every log line of the request (its span), and stored with
//! the events the request accepted.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The request's id, in the request's extensions for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn given(req: &Request) -> Option<String> {
    let v = req.headers().get(HEADER)?.to_str().ok()?;
    ((1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())).then(|| v.to_string())
}

/// Middleware around every API request.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = given(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty,
    );
    // A producer's own trace: this request's spans join it.
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        hookrelay_core::telemetry::continue_from(&span, tp);
    }
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, v);
    }
    res
}
