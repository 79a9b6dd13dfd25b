//! The HTTP listener, defended against slow and greedy clients: at most
//! `max_connections` connections are open (further ones wait in the kernel's
//! backlog, never costing the process a file descriptor); a connection that has
//! not sent a whole request head within the header timeout, or sits idle past the
//! idle timeout, is closed; a body must arrive within the body timeout; bodies
//! being read and handled share one byte budget (`budget`); HTTP/2 connections
//! are capped in streams and header size. HTTP/1.1 and HTTP/2 (prior knowledge)
//! are served by hyper-util's connection builder.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hookrelay_core::config::HttpSettings;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::budget::BodyBudget;

/// How long a connection being closed (idle or stalled) gets to say goodbye
/// (an HTTP/2 GOAWAY) before it is dropped.
const GRACE: Duration = Duration::from_secs(1);

/// The listener's limits, from `HttpSettings`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub body_budget_bytes: usize,
    /// What a body of unknown length counts against the budget.
    pub max_body_bytes: usize,
    pub http2_max_streams: u32,
    pub http2_max_header_bytes: u32,
}

impl Limits {
    pub fn from_settings(h: &HttpSettings) -> Self {
        Self {
            header_timeout: h.header_timeout,
            idle_timeout: h.idle_timeout,
            body_timeout: h.body_timeout,
            max_connections: h.max_connections,
            body_budget_bytes: h.body_budget_bytes,
            max_body_bytes: h.max_payload_bytes * crate::routes::BATCH_FACTOR,
            http2_max_streams: h.http2_max_streams,
            http2_max_header_bytes: h.http2_max_header_bytes,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = BodyBudget::new(&limits).guard(app);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Head and idle deadlines are the watchdog's (`Activity`): hyper's own header
    // timer would also close idle keep-alive connections at the header deadline.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(limits.http2_max_header_bytes);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        // A free slot first: past the cap, new connections wait in the backlog.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was
                    // accepted: never a reason to stop serving.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (builder, app, shutdown) = (builder.clone(), app.clone(), shutdown.clone());
        connections.spawn(async move {
            serve_connection(&builder, stream, peer, app, limits, shutdown).await;
            drop(slot);
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

async fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let open = Open::begin(activity.clone());
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(open);
                response
            }
        })
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    let mut drop_at: Option<Instant> = None;
    loop {
        let wake = drop_at.unwrap_or_else(|| activity.deadline(&limits));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(wake) => {
                if drop_at.is_some() {
                    tracing::debug!(%peer, "dropping a connection that did not close in time");
                    return;
                }
                if let Some(reason) = activity.expired(&limits, Instant::now()) {
                    tracing::debug!(%peer, reason, "closing a connection");
                    metrics::counter!(hookrelay_core::metrics::HTTP_LIMITED, "reason" => reason)
                        .increment(1);
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    drop_at = Some(Instant::now() + GRACE);
                }
            }
        }
    }
}

/// What a connection is doing, for the watchdog: requests open, and whether bytes
/// of a request not yet begun have arrived (a head being sent), since when.
struct Activity(Mutex<State>);

struct State {
    open: usize,
    /// Bytes arrived while no request was open: a request head is under way.
    partial: bool,
    since: Instant,
}

impl Activity {
    fn new() -> Self {
        Self(Mutex::new(State {
            open: 0,
            // A new connection owes its first request head.
            partial: true,
            since: Instant::now(),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) {
        let mut s = self.state();
        if s.open == 0 && !s.partial {
            s.partial = true;
            s.since = Instant::now();
        }
    }

    /// When the connection expires if nothing changes (while a request is open,
    /// only a time to look again).
    fn deadline(&self, limits: &Limits) -> Instant {
        let s = self.state();
        if s.open > 0 {
            Instant::now() + limits.header_timeout.min(limits.idle_timeout)
        } else if s.partial {
            s.since + limits.header_timeout
        } else {
            s.since + limits.idle_timeout
        }
    }

    /// Why the connection is to be closed now, if it is.
    fn expired(&self, limits: &Limits, now: Instant) -> Option<&'static str> {
        let partial = {
            let s = self.state();
            if s.open > 0 {
                return None;
            }
            s.partial
        };
        (now >= self.deadline(limits)).then_some(if partial {
            "header_timeout"
        } else {
            "idle_timeout"
        })
    }
}

/// A request being served: the connection is busy until it is dropped.
struct Open(Arc<Activity>);

impl Open {
    fn begin(activity: Arc<Activity>) -> Self {
        {
            let mut s = activity.state();
            s.open += 1;
            s.partial = false;
        }
        Self(activity)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.open -= 1;
        s.since = Instant::now();
    }
}

/// A socket that tells its `Activity` when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(30),
            max_connections: 10,
            body_budget_bytes: 1 << 20,
            max_body_bytes: 1 << 20,
            http2_max_streams: 100,
            http2_max_header_bytes: 16384,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_owes_its_head_within_the_header_timeout() {
        let (a, l) = (Arc::new(Activity::new()), limits());
        let start = Instant::now();
        assert_eq!(a.expired(&l, start + Duration::from_secs(9)), None);
        assert_eq!(
            a.expired(&l, start + Duration::from_secs(10)),
            Some("header_timeout")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_request_never_expires_and_idleness_counts_from_its_end() {
        let (a, l) = (Arc::new(Activity::new()), limits());
        let open = Open::begin(a.clone());
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(
            a.expired(&l, Instant::now()),
            None,
            "a slow handler is not idle"
        );
        drop(open);
        let ended = Instant::now();
        assert_eq!(a.expired(&l, ended + Duration::from_secs(74)), None);
        assert_eq!(
            a.expired(&l, ended + Duration::from_secs(75)),
            Some("idle_timeout")
        );
        // The next request's first bytes start the header clock instead.
        tokio::time::advance(Duration::from_secs(5)).await;
        a.read();
        let first_byte = Instant::now();
        assert_eq!(a.expired(&l, first_byte + Duration::from_secs(9)), None);
        assert_eq!(
            a.expired(&l, first_byte + Duration::from_secs(10)),
            Some("header_timeout")
        );
    }
}
