//! In-process webhook receivers on loopback: verify every signature with the
//! `hookrelay-signature` crate, record which (event, endpoint) pairs arrived, how
//! late, and how often; misbehave on request for fault scenarios.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hookrelay_signature::{Verifier, headers};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::behaviour::Behaviour;

/// Microseconds since the Unix epoch (shared clock of producer and receivers).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One endpoint as the receivers see it.
pub struct EndpointState {
    pub behaviour: Behaviour,
    pub verifier: Verifier,
    window: Mutex<(Instant, u32)>,
}

impl EndpointState {
    pub fn new(behaviour: Behaviour, verifier: Verifier) -> Self {
        Self {
            behaviour,
            verifier,
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Token-window check for `Throttle`.
    fn admit(&self, per_second: u32) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.0.elapsed() >= Duration::from_secs(1) {
            *w = (Instant::now(), 0);
        }
        w.1 += 1;
        w.1 <= per_second
    }
}

/// What arrived, shared by every receiver.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<LedgerInner>,
    /// Unique arrivals at endpoints expected to get everything.
    pub healthy: AtomicU64,
    pub changed: Notify,
}

#[derive(Default)]
struct LedgerInner {
    seen: HashSet<(u64, u32)>,
    /// Each endpoint's highest sequence number so far.
    last: HashMap<u32, u64>,
    out_of_order: u64,
    latencies_us: Vec<u64>,
    duplicates: u64,
    bad_signatures: u64,
    other_unique: u64,
    first_arrival_us: Option<u64>,
    last_arrival_us: u64,
}

/// A copy of the ledger's figures.
#[derive(Debug, Clone, Default)]
pub struct LedgerSnapshot {
    pub healthy_unique: u64,
    pub other_unique: u64,
    pub duplicates: u64,
    /// First arrivals below a sequence number its endpoint already got.
    pub out_of_order: u64,
    pub bad_signatures: u64,
    pub latencies_us: Vec<u64>,
    pub first_arrival_us: Option<u64>,
    pub last_arrival_us: u64,
}

impl Ledger {
    fn record(&self, seq: u64, endpoint: u32, sent_us: u64, healthy: bool) {
        let now = now_us();
        let mut l = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if l.seen.insert((seq, endpoint)) {
            let last = l.last.entry(endpoint).or_insert(seq);
            if seq < *last {
                l.out_of_order += 1;
            } else {
                *last = seq;
            }
            // Latency figures describe the endpoints that should get everything.
            if healthy {
                l.latencies_us.push(now.saturating_sub(sent_us));
            }
            l.first_arrival_us.get_or_insert(now);
            l.last_arrival_us = now;
            if healthy {
                self.healthy.fetch_add(1, Ordering::Relaxed);
            } else {
                l.other_unique += 1;
            }
        } else {
            l.duplicates += 1;
        }
        drop(l);
        self.changed.notify_waiters();
    }

    fn bad_signature(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bad_signatures += 1;
    }

    pub fn snapshot(&self) -> LedgerSnapshot {
        let l = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        LedgerSnapshot {
            healthy_unique: self.healthy.load(Ordering::Relaxed),
            other_unique: l.other_unique,
            duplicates: l.duplicates,
            out_of_order: l.out_of_order,
            bad_signatures: l.bad_signatures,
            latencies_us: l.latencies_us.clone(),
            first_arrival_us: l.first_arrival_us,
            last_arrival_us: l.last_arrival_us,
        }
    }
}

pub type Endpoints = Arc<RwLock<Vec<Option<Arc<EndpointState>>>>>;

#[derive(Clone)]
struct Shared {
    ledger: Arc<Ledger>,
    endpoints: Endpoints,
}

/// The running receivers.
pub struct Receivers {
    pub ledger: Arc<Ledger>,
    pub endpoints: Endpoints,
    bases: Vec<String>,
    blackhole: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Receivers {
    pub async fn start(ports: usize) -> anyhow::Result<Self> {
        let shared = Shared { ledger: Arc::default(), endpoints: Arc::default() };
        let mut bases = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..ports {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            bases.push(format!("http://{}", listener.local_addr()?));
            let app = axum::Router::new()
                .route("/e/{index}", axum::routing::post(receive))
                .with_state(shared.clone());
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        let (blackhole, task) = blackhole().await?;
        tasks.push(task);
        Ok(Self {
            ledger: shared.ledger,
            endpoints: shared.endpoints,
            bases,
            blackhole,
            tasks,
        })
    }

    /// The URL endpoint `index` is created with.
    pub fn url(&self, index: usize, behaviour: Behaviour) -> String {
        let base = if behaviour == Behaviour::Blackhole {
            &self.blackhole
        } else {
            &self.bases[index % self.bases.len()]
        };
        format!("{base}/e/{index}")
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A listener that accepts connections and never reads from or answers them.
async fn blackhole() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok((format!("http://{addr}"), task))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn receive(
    State(shared): State<Shared>,
    Path(index): Path<u32>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = shared
        .endpoints
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(index as usize)
        .cloned()
        .flatten();
    let Some(endpoint) = endpoint else {
        return (StatusCode::NOT_FOUND, "unknown endpoint").into_response();
    };
    match endpoint.behaviour {
        Behaviour::Fail(p) | Behaviour::Flaky(p) if rand::random::<f64>() < p => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
        }
        Behaviour::Timeout(p) if rand::random::<f64>() < p => {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        Behaviour::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Behaviour::Throttle(rate) if !endpoint.admit(rate) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response();
        }
        Behaviour::Gone => return (StatusCode::GONE, "gone").into_response(),
        _ => {}
    }
    let verified = endpoint.verifier.verify(
        header(&h, headers::ID),
        header(&h, headers::TIMESTAMP),
        header(&h, headers::SIGNATURE),
        &body,
    );
    if verified.is_err() {
        shared.ledger.bad_signature();
        return (StatusCode::BAD_REQUEST, "bad signature").into_response();
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    let (Some(seq), Some(sent)) = (payload["seq"].as_u64(), payload["t"].as_u64()) else {
        return (StatusCode::BAD_REQUEST, "no seq").into_response();
    };
    shared
        .ledger
        .record(seq, index, sent, endpoint.behaviour.expects_all());
    StatusCode::NO_CONTENT.into_response()
}
