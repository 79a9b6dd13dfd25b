//! Sends events at a fixed rate or a fixed concurrency, single or batched, retrying
//! `503`s and connection errors (an unconfirmed event is never `202`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::options::Options;
use crate::receiver::now_us;
use crate::setup::{Setup, event_type};

/// Counters shared with the progress display.
#[derive(Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub retries: AtomicU64,
    pub rejected: AtomicU64,
    /// When the first and the latest retry happened (Unix microseconds; 0: none).
    pub first_retry_us: AtomicU64,
    pub last_retry_us: AtomicU64,
}

impl Progress {
    fn retried(&self) {
        let now = now_us();
        self.retries.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .first_retry_us
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last_retry_us.fetch_max(now, Ordering::Relaxed);
    }

    /// The first and latest retry as Unix seconds, if there was one.
    pub fn retry_window(&self) -> Option<(f64, f64)> {
        let first = self.first_retry_us.load(Ordering::Relaxed);
        let last = self.last_retry_us.load(Ordering::Relaxed);
        (first > 0).then(|| (first as f64 / 1e6, last as f64 / 1e6))
    }
}

pub struct Outcome {
    /// Ingest latency per accepted request, in microseconds.
    pub ingest_us: Vec<u64>,
    /// Indexes of the requests answered `202`.
    pub accepted_requests: Vec<u64>,
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

/// Which events a request carries, and for whom.
pub fn request_events(opts: &Options, request: u64) -> (usize, std::ops::Range<u64>) {
    let k = opts.batch as u64;
    let start = request * k;
    let tenant = (request % opts.tenants as u64) as usize;
    (tenant, start..(start + k).min(opts.events))
}

pub fn type_of(opts: &Options, seq: u64) -> usize {
    (seq % opts.event_types() as u64) as usize
}

fn body(opts: &Options, seqs: std::ops::Range<u64>, t: u64, pad: &str) -> Value {
    let events: Vec<Value> = seqs
        .map(|seq| json!({ "event_type": event_type(type_of(opts, seq)), "payload": { "seq": seq, "t": t, "pad": pad } }))
        .collect();
    if opts.batch == 1 {
        events.into_iter().next().unwrap_or(Value::Null)
    } else {
        json!({ "events": events })
    }
}

struct Ctx {
    http: reqwest::Client,
    opts: Options,
    setup: Setup,
    pad: String,
    progress: Arc<Progress>,
    latencies: Mutex<Vec<u64>>,
    accepted_requests: Mutex<Vec<u64>>,
    first_error: Mutex<Option<String>>,
    cancel: CancellationToken,
}

impl Ctx {
    /// Sends one request; `intended_us` is when it should have gone out.
    async fn send(&self, request: u64, intended_us: u64) {
        let (tenant, seqs) = request_events(&self.opts, request);
        let n = seqs.end - seqs.start;
        let api = self.opts.api_for(request);
        let tenant_id = &self.setup.tenants[tenant];
        let url = if self.opts.batch == 1 {
            format!("{api}/v1/tenants/{tenant_id}/events")
        } else {
            format!("{api}/v1/tenants/{tenant_id}/events/batch")
        };
        let payload = body(&self.opts, seqs, intended_us, &self.pad);
        self.progress.sent.fetch_add(n, Ordering::Relaxed);
        let mut pause = Duration::from_millis(20);
        loop {
            let res = self
                .http
                .post(&url)
                .bearer_auth(&self.setup.key)
                .json(&payload)
                .send()
                .await;
            match res {
                Ok(r) if r.status().as_u16() == 202 => {
                    self.progress.accepted.fetch_add(n, Ordering::Relaxed);
                    self.latencies
                        .lock()
                        .await
                        .push(now_us().saturating_sub(intended_us));
                    self.accepted_requests.lock().await.push(request);
                    return;
                }
                Ok(r) if r.status().as_u16() != 503 && r.status().as_u16() != 429 => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    self.progress.rejected.fetch_add(n, Ordering::Relaxed);
                    self.first_error
                        .lock()
                        .await
                        .get_or_insert(format!("{status}: {text}"));
                    return;
                }
                // 503/429 or a connection error: the event was not accepted; retry.
                _ => {}
            }
            self.progress.retried();
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

pub async fn produce(
    http: reqwest::Client,
    opts: &Options,
    setup: Setup,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Outcome {
    let pad = "x".repeat(opts.payload_bytes.saturating_sub(60));
    let requests = opts.events.div_ceil(opts.batch as u64);
    let ctx = Arc::new(Ctx {
        http,
        opts: opts.clone(),
        setup,
        pad,
        progress,
        latencies: Mutex::new(Vec::with_capacity(requests as usize)),
        accepted_requests: Mutex::new(Vec::with_capacity(requests as usize)),
        first_error: Mutex::new(None),
        cancel: cancel.clone(),
    });
    let started = Instant::now();
    match opts.rate {
        Some(rate) => fixed_rate(&ctx, rate, requests).await,
        None => fixed_concurrency(&ctx, opts.concurrency.unwrap_or(64), requests).await,
    }
    let elapsed = started.elapsed();
    let ingest_us = std::mem::take(&mut *ctx.latencies.lock().await);
    let accepted_requests = std::mem::take(&mut *ctx.accepted_requests.lock().await);
    let first_error = ctx.first_error.lock().await.clone();
    Outcome { ingest_us, accepted_requests, elapsed, first_error }
}

/// Requests leave on a fixed schedule whatever the answers' speed, and latency is
/// measured from the scheduled time (no coordinated omission).
async fn fixed_rate(ctx: &Arc<Ctx>, events_per_s: u64, requests: u64) {
    let period = Duration::from_secs_f64(ctx.opts.batch as f64 / events_per_s as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    // Bounds memory if the target stalls; far above any healthy backlog.
    let in_flight = Arc::new(Semaphore::new(50_000));
    let start_us = now_us();
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..requests {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let intended = start_us + (period.as_micros() as u64) * r;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let ctx = ctx.clone();
        tasks.spawn(async move {
            ctx.send(r, intended).await;
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn fixed_concurrency(ctx: &Arc<Ctx>, workers: usize, requests: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (ctx, next) = (ctx.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let r = next.fetch_add(1, Ordering::Relaxed);
                if r >= requests || ctx.cancel.is_cancelled() {
                    return;
                }
                ctx.send(r, now_us()).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
