//! The byte budget for request bodies: before a body is read, its declared length
//! (or, for a body of unknown length, the largest the routes accept) is taken from
//! one process-wide budget and held until the response is ready; a request that
//! does not fit is answered `503` with `retry-after`, unread. So a hundred
//! parallel 16 MiB batches cannot grow the process past the budget. Bodies must
//! also arrive within the body timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Body as _;
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::error::ApiError;
use crate::server::Limits;

/// The budget counts in units of this many bytes (a semaphore counts in `u32`s).
const UNIT: usize = 1024;

#[derive(Clone)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total: u32,
    unknown_length: usize,
    timeout: Duration,
}

impl BodyBudget {
    pub fn new(limits: &Limits) -> Self {
        let total = u32::try_from(limits.body_budget_bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        Self {
            units: Arc::new(Semaphore::new(total as usize)),
            total,
            unknown_length: limits.max_body_bytes,
            timeout: limits.body_timeout,
        }
    }

    /// `app` with every request body counted against the budget and timed.
    pub fn guard(self, app: Router) -> Router {
        let timeout = self.timeout;
        // The budget outermost: it must see the body's own length, which a timed
        // body no longer tells.
        app.layer(RequestBodyTimeoutLayer::new(timeout))
            .layer(axum::middleware::from_fn_with_state(self, take))
    }

    /// The units a body of `bytes` takes (never more than the whole budget, so one
    /// request alone always fits).
    fn units_for(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .min(self.total)
    }
}

async fn take(State(budget): State<BodyBudget>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let bytes = match request.body().size_hint().exact().or(declared) {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => budget.unknown_length,
    };
    if bytes == 0 {
        return next.run(request).await;
    }
    let Ok(held) = budget
        .units
        .clone()
        .try_acquire_many_owned(budget.units_for(bytes))
    else {
        metrics::counter!(hookrelay_core::metrics::HTTP_LIMITED, "reason" => "body_budget")
            .increment(1);
        return ApiError::unavailable(
            "the server is reading as many request bodies as it may; retry shortly",
        )
        .into_response();
    };
    let response = next.run(request).await;
    drop(held);
    response
}
