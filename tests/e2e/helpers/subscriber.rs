//! The fake subscriber: an in-process webhook endpoint on a loopback port that
//! records every request and answers as scripted (status, `Retry-After`, delay).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{PATIENCE, eventually};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: std::time::Instant,
    /// The status this receiver answered.
    pub status: StatusCode,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Whether `secret` verifies the request's Standard Webhooks signature.
pub fn verifies(secret: &str, got: &Received) -> bool {
    hookrelay_signature::Verifier::new(vec![
        hookrelay_signature::Secret::from_whsec(secret).expect("secret"),
    ])
    .verify(
        got.header("webhook-id"),
        got.header("webhook-timestamp"),
        got.header("webhook-signature"),
        &got.body,
    )
    .is_ok()
}

/// A scripted answer: status and an optional `Retry-After`.
pub type Scripted = (StatusCode, Option<&'static str>);

#[derive(Clone)]
struct Inbox {
    got: Arc<Mutex<Vec<Received>>>,
    notify: Arc<Notify>,
    status: StatusCode,
    reply: &'static str,
    /// Answers for the first requests, in order; then `status`.
    script: Arc<Mutex<std::collections::VecDeque<Scripted>>>,
    /// How long each answer takes.
    delay: Duration,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Requests begun, answered or not.
    started: Arc<std::sync::atomic::AtomicUsize>,
}

/// An in-process webhook endpoint on a loopback port that records every request.
pub struct Receiver {
    pub url: String,
    inbox: Inbox,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::replying(StatusCode::OK, "ok").await
    }

    pub async fn replying(status: StatusCode, reply: &'static str) -> Self {
        Self::scripted(Vec::new(), status, reply).await
    }

    /// Answers the first requests from `script`, then `status` with `reply`.
    pub async fn scripted(script: Vec<Scripted>, status: StatusCode, reply: &'static str) -> Self {
        Self::build(script, status, reply, Duration::ZERO).await
    }

    /// Answers `500` to the first `n` requests, then `200 ok`.
    pub async fn failing_first(n: usize) -> Self {
        Self::scripted(
            vec![(StatusCode::INTERNAL_SERVER_ERROR, None); n],
            StatusCode::OK,
            "ok",
        )
        .await
    }

    /// Answers `500` to about `failures` (0-1) of its first 100,000 requests, at
    /// random, and `200 ok` to the others.
    pub async fn flaky(failures: f64) -> Self {
        let script = (0..100_000)
            .map(|_| {
                let status = if rand::random::<f64>() < failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                (status, None)
            })
            .collect();
        Self::scripted(script, StatusCode::OK, "ok").await
    }

    /// Answers 200 after `delay`, and measures how many requests overlap.
    pub async fn slow(delay: Duration) -> Self {
        Self::build(Vec::new(), StatusCode::OK, "ok", delay).await
    }

    async fn build(
        script: Vec<Scripted>,
        status: StatusCode,
        reply: &'static str,
        delay: Duration,
    ) -> Self {
        let inbox = Inbox {
            got: Arc::default(),
            notify: Arc::default(),
            status,
            reply,
            script: Arc::new(Mutex::new(script.into())),
            delay,
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            started: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(record))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inbox, task }
    }

    /// The most requests this receiver had open at once.
    pub fn max_concurrency(&self) -> usize {
        self.inbox
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests begun so far, including those still open.
    pub fn started(&self) -> usize {
        self.inbox.started.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `n` requests are open at once.
    pub async fn wait_for_open(&self, n: usize) {
        let in_flight = &self.inbox.in_flight;
        eventually(format!("{n} requests open at once"), || async {
            let open = in_flight.load(std::sync::atomic::Ordering::SeqCst);
            if open >= n {
                Ok(())
            } else {
                Err(format!("{open} open"))
            }
        })
        .await
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.got.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived; returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let wait = async {
            loop {
                let notified = self.inbox.notify.notified();
                if self.inbox.got.lock().expect("lock").len() >= n {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(PATIENCE, wait).await.is_err() {
            panic!("receiver got {} of {n} requests", self.received().len());
        }
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    inbox.started.fetch_add(1, Ordering::SeqCst);
    let now_open = inbox.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inbox.max_in_flight.fetch_max(now_open, Ordering::SeqCst);
    if !inbox.delay.is_zero() {
        tokio::time::sleep(inbox.delay).await;
    }
    inbox.in_flight.fetch_sub(1, Ordering::SeqCst);
    let at = std::time::Instant::now();
    let next = inbox.script.lock().expect("lock").pop_front();
    let status = next.map_or(inbox.status, |(status, _)| status);
    inbox
        .got
        .lock()
        .expect("lock")
        .push(Received { headers, body, at, status });
    inbox.notify.notify_waiters();
    match next {
        Some((status, Some(retry_after))) => {
            (status, [("retry-after", retry_after)], "scripted").into_response()
        }
        Some((status, None)) => (status, "scripted").into_response(),
        None => (inbox.status, inbox.reply).into_response(),
    }
}
