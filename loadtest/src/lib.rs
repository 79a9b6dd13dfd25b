//! hookrelay-loadtest: sets a hookrelay up through its public API, sends events at a
//! fixed rate or concurrency, receives the deliveries on in-process receivers that
//! verify every signature, and reports throughput, latency, loss and duplicates.
#![forbid(unsafe_code)]

pub mod behaviour;
pub mod memory;
pub mod options;
pub mod producer;
pub mod receiver;
pub mod report;
pub mod setup;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

pub use options::Options;
pub use report::Report;

use crate::behaviour::behaviour_of;
use crate::receiver::Receivers;
use crate::report::quantile_ms;

/// Deliveries that `requests` should cause at endpoints that accept everything.
pub fn expected_healthy(opts: &Options, requests: impl IntoIterator<Item = u64>) -> u64 {
    let types = opts.event_types();
    let mut expected = 0;
    for r in requests {
        let (tenant, seqs) = producer::request_events(opts, r);
        for seq in seqs {
            let t = producer::type_of(opts, seq);
            expected += (0..opts.endpoints)
                .filter(|j| j % types == t)
                .filter(|j| {
                    behaviour_of(&opts.behaviours, setup::endpoint_index(opts, tenant, *j))
                        .expects_all()
                })
                .count() as u64;
        }
    }
    expected
}

fn bar(multi: &MultiProgress, len: u64, label: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(len));
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {per_sec} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}

/// Runs the whole measurement. `cancel` (e.g. Ctrl-C) ends it early with a summary.
pub async fn run(opts: Options, cancel: CancellationToken) -> anyhow::Result<Report> {
    opts.validate()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()?;
    let receivers = Receivers::start(opts.receiver_ports).await?;
    let setup = setup::prepare(&http, &opts, &receivers).await?;
    let planned = expected_healthy(&opts, 0..opts.events.div_ceil(opts.batch as u64));

    let sampler_stop = CancellationToken::new();
    let peak = opts
        .gateway_pid
        .map(|pid| memory::sample_peak(pid, sampler_stop.clone()));

    let multi = MultiProgress::new();
    if opts.quiet || opts.json {
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
    let sent_bar = bar(&multi, opts.events, "accepted");
    let got_bar = bar(&multi, planned, "delivered");
    let progress = Arc::new(producer::Progress::default());
    let ticker = {
        let (progress, ledger, sent_bar, got_bar, stop) = (
            progress.clone(),
            receivers.ledger.clone(),
            sent_bar.clone(),
            got_bar.clone(),
            sampler_stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                sent_bar.set_position(progress.accepted.load(Ordering::Relaxed));
                got_bar.set_position(ledger.healthy.load(Ordering::Relaxed));
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };

    let started_us = receiver::now_us();
    let outcome = producer::produce(http, &opts, setup, progress.clone(), cancel.clone()).await;
    // What was accepted is what must arrive (all of the plan, unless interrupted or refused).
    let expected = expected_healthy(&opts, outcome.accepted_requests.iter().copied());

    // Wait for every expected delivery, the deadline, or Ctrl-C.
    let ledger = receivers.ledger.clone();
    let wait = async {
        loop {
            let changed = ledger.changed.notified();
            if ledger.healthy.load(Ordering::Relaxed) >= expected {
                return;
            }
            changed.await;
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::timeout(opts.deadline(), wait) => {}
    }
    sampler_stop.cancel();
    let _ = ticker.await;
    sent_bar.finish_and_clear();
    got_bar.finish_and_clear();

    let snap = receivers.ledger.snapshot();
    let mut ingest = outcome.ingest_us;
    ingest.sort_unstable();
    let mut e2e = snap.latencies_us;
    e2e.sort_unstable();
    if let Some(e) = &outcome.first_error {
        eprintln!("first rejected request: {e}");
    }
    let accepted = progress.accepted.load(Ordering::Relaxed);
    let ingest_s = outcome.elapsed.as_secs_f64();
    let span_s = (snap.last_arrival_us.saturating_sub(started_us)) as f64 / 1e6;
    let delivered = snap.healthy_unique;
    Ok(Report {
        sent: progress.sent.load(Ordering::Relaxed),
        accepted,
        rejected: progress.rejected.load(Ordering::Relaxed),
        retries: progress.retries.load(Ordering::Relaxed),
        retries_first_at: progress.retry_window().map(|w| w.0),
        retries_last_at: progress.retry_window().map(|w| w.1),
        ingest_s,
        ingest_per_s: if ingest_s > 0.0 {
            accepted as f64 / ingest_s
        } else {
            0.0
        },
        ingest_p50_ms: quantile_ms(&ingest, 0.5),
        ingest_p90_ms: quantile_ms(&ingest, 0.9),
        ingest_p99_ms: quantile_ms(&ingest, 0.99),
        ingest_max_ms: quantile_ms(&ingest, 1.0),
        expected,
        delivered,
        duplicates: snap.duplicates,
        out_of_order: snap.out_of_order,
        missing: expected.saturating_sub(delivered),
        bad_signatures: snap.bad_signatures,
        faulty_endpoint_deliveries: snap.other_unique,
        e2e_p50_ms: quantile_ms(&e2e, 0.5),
        e2e_p90_ms: quantile_ms(&e2e, 0.9),
        e2e_p99_ms: quantile_ms(&e2e, 0.99),
        e2e_max_ms: quantile_ms(&e2e, 1.0),
        deliveries_per_s: if span_s > 0.0 {
            (delivered + snap.other_unique) as f64 / span_s
        } else {
            0.0
        },
        elapsed_s: (receiver::now_us().saturating_sub(started_us)) as f64 / 1e6,
        gateway_peak_rss_mb: peak.map(|p| p.load(Ordering::Relaxed) as f64 / 1024.0),
        interrupted: cancel.is_cancelled(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(behaviours: &[&str]) -> Options {
        Options {
            api: vec!["http://127.0.0.1:1".into()],
            admin_token: String::new(),
            events: 10,
            rate: None,
            concurrency: None,
            batch: 1,
            tenants: 1,
            endpoints: 4,
            fanout: 2,
            payload_bytes: 100,
            deadline: 1,
            receiver_ports: 1,
            behaviours: behaviours
                .iter()
                .map(|b| b.parse().expect("spec"))
                .collect(),
            endpoint_json: None,
            gateway_pid: None,
            json: true,
            quiet: true,
        }
    }

    #[test]
    fn expected_counts_fanout_and_skips_faulty_endpoints() {
        assert_eq!(expected_healthy(&opts(&[]), 0..10), 20);
        // Endpoint 0 takes type 0 (the even events): each of those loses one delivery.
        assert_eq!(expected_healthy(&opts(&["0:gone"]), 0..10), 15);
        // Slow endpoints still get everything.
        assert_eq!(expected_healthy(&opts(&["0-3:slow=5"]), 0..10), 20);
        // Only accepted requests count.
        assert_eq!(expected_healthy(&opts(&[]), [0, 1, 2]), 6);
    }
}
