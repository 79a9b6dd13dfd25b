//! Samples another process's resident memory from /proc (Linux), keeping the peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Resident set size of `pid` in KiB, if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples every 200 ms until `cancel`; the peak is readable at any time.
pub fn sample_peak(pid: u32, cancel: CancellationToken) -> Arc<AtomicU64> {
    let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
    let p = peak.clone();
    tokio::spawn(async move {
        loop {
            if let Some(kib) = rss_kib(pid) {
                p.fetch_max(kib, Ordering::Relaxed);
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    });
    peak
}
