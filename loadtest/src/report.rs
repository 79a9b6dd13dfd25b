//! The run's figures: a table for people, one JSON object (stable keys) for scripts.

use serde::Serialize;

/// Every key is documented in `loadtest/README.md`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub sent: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub retries: u64,
    /// Unix seconds of the first and the latest retry (none: `null`), so a fault
    /// scenario can tell its ingest errors stayed inside the fault's window.
    pub retries_first_at: Option<f64>,
    pub retries_last_at: Option<f64>,
    pub ingest_s: f64,
    pub ingest_per_s: f64,
    pub ingest_p50_ms: f64,
    pub ingest_p90_ms: f64,
    pub ingest_p99_ms: f64,
    pub ingest_max_ms: f64,
    pub expected: u64,
    pub delivered: u64,
    pub duplicates: u64,
    /// Deliveries that arrived after a later event's at the same endpoint (only
    /// meaningful for ordered endpoints fed one event at a time).
    pub out_of_order: u64,
    pub missing: u64,
    pub bad_signatures: u64,
    pub faulty_endpoint_deliveries: u64,
    pub e2e_p50_ms: f64,
    pub e2e_p90_ms: f64,
    pub e2e_p99_ms: f64,
    pub e2e_max_ms: f64,
    pub deliveries_per_s: f64,
    pub elapsed_s: f64,
    pub gateway_peak_rss_mb: Option<f64>,
    pub interrupted: bool,
}

impl Report {
    /// Nothing lost and every signature valid.
    pub fn passed(&self) -> bool {
        self.missing == 0 && self.bad_signatures == 0 && !self.interrupted
    }

    pub fn table(&self) -> String {
        let mem = self
            .gateway_peak_rss_mb
            .map_or("n/a".to_string(), |m| format!("{m:.1} MiB"));
        format!(
            "\
events      sent {sent}  accepted {acc}  rejected {rej}  retries {ret}
ingest      {ips:.0} events/s over {is:.2} s   latency p50 {i50:.2} ms  p90 {i90:.2} ms  p99 {i99:.2} ms  max {imax:.2} ms
deliveries  expected {exp}  delivered {del}  missing {mis}  duplicates {dup}  bad signatures {bad}  (faulty endpoints got {faulty})
end to end  p50 {e50:.2} ms  p90 {e90:.2} ms  p99 {e99:.2} ms  max {emax:.2} ms
throughput  {dps:.0} deliveries/s sustained   total {el:.2} s   gateway peak RSS {mem}
result      {result}",
            sent = self.sent,
            acc = self.accepted,
            rej = self.rejected,
            ret = self.retries,
            ips = self.ingest_per_s,
            is = self.ingest_s,
            i50 = self.ingest_p50_ms,
            i90 = self.ingest_p90_ms,
            i99 = self.ingest_p99_ms,
            imax = self.ingest_max_ms,
            exp = self.expected,
            del = self.delivered,
            mis = self.missing,
            dup = self.duplicates,
            bad = self.bad_signatures,
            faulty = self.faulty_endpoint_deliveries,
            e50 = self.e2e_p50_ms,
            e90 = self.e2e_p90_ms,
            e99 = self.e2e_p99_ms,
            emax = self.e2e_max_ms,
            dps = self.deliveries_per_s,
            el = self.elapsed_s,
            result = if self.passed() { "PASS: nothing lost" } else { "FAIL: deliveries missing, bad signatures, or interrupted" },
        )
    }
}

/// The `q` quantile (0..=1) of microsecond samples, in milliseconds.
pub fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
    sorted_us[rank.min(sorted_us.len() - 1)] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 51.0);
        assert_eq!(quantile_ms(&v, 0.99), 99.0);
        assert_eq!(quantile_ms(&v, 1.0), 100.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
