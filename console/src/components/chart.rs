//! Charts drawn on the server as SVG, so they work without scripts and under the
//! console's CSP (presentation attributes only, no inline styles): attempts per
//! bin by outcome, failure rate, latency p50/p99, backlog and lag, and the
//! endpoints list's success sparklines. Each chart's `data-points` says how many
//! bins it draws.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, DurationRound, Utc};
use hookrelay_core::store::{AttemptBin, LATENCY_BOUNDS_MS, LagBin, SuccessBin};
use leptos::prelude::*;
use uuid::Uuid;

const W: f64 = 600.0;
const H: f64 = 150.0;
const PAD: f64 = 26.0;

const GREEN: &str = "#2f855a";
const AMBER: &str = "#c05621";
const RED: &str = "#c53030";
const BLUE: &str = "#2b6cb0";
const PURPLE: &str = "#6b46c1";

/// A time range drawn as bins.
#[derive(Clone, Copy)]
pub struct Range {
    pub label: &'static str,
    pub span_minutes: i32,
    pub bin_minutes: i32,
}

pub const HOUR: Range = Range {
    label: "last hour",
    span_minutes: 60,
    bin_minutes: 1,
};
pub const DAY: Range = Range {
    label: "last day",
    span_minutes: 1440,
    bin_minutes: 15,
};

impl Range {
    pub fn bins(self) -> usize {
        usize::try_from(self.span_minutes / self.bin_minutes).unwrap_or(0)
    }

    /// The start of each bin, oldest first, ending with the current one.
    fn starts(self, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let step = Duration::minutes(i64::from(self.bin_minutes));
        let last = now.duration_trunc(step).unwrap_or(now);
        (0..self.bins())
            .rev()
            .map(|k| last - step * i32::try_from(k).unwrap_or(0))
            .collect()
    }

    /// `rows` on this range's bins, an empty bin where no row is.
    fn fill<T: Clone + Default>(self, rows: &[T], at: impl Fn(&T) -> DateTime<Utc>) -> Vec<T> {
        self.starts(Utc::now())
            .into_iter()
            .map(|start| {
                rows.iter()
                    .find(|r| at(r) == start)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// The latency below which fraction `q` of the counted attempts fell, in ms (the
/// bucket's upper bound); `None` without attempts.
pub fn percentile(latency: &[i64], q: f64) -> Option<f64> {
    let total: i64 = latency.iter().sum();
    if total == 0 {
        return None;
    }
    let target = (q * total as f64).ceil() as i64;
    let mut seen = 0;
    for (k, n) in latency.iter().enumerate() {
        seen += n;
        if seen >= target {
            let bound = LATENCY_BOUNDS_MS
                .get(k)
                .copied()
                .unwrap_or(2 * LATENCY_BOUNDS_MS[10]);
            return Some(f64::from(bound));
        }
    }
    None
}

fn x(i: usize, n: usize) -> f64 {
    PAD + (W - 2.0 * PAD) * (i as f64 + 0.5) / n.max(1) as f64
}

fn y(v: f64, max: f64) -> f64 {
    H - PAD - (H - 2.0 * PAD) * (v / max).clamp(0.0, 1.0)
}

fn frame(out: &mut String, title: &str, range: Range, max_label: &str, n: usize) {
    let _ = write!(
        out,
        r##"<svg class="chart" viewBox="0 0 {W} {H}" role="img" data-points="{n}" aria-label="{title}, {}">"##,
        range.label
    );
    let _ = write!(
        out,
        r##"<text x="{PAD}" y="14" font-size="12" fill="#333">{title}</text><text x="{}" y="14" font-size="11" fill="#666" text-anchor="end">{}</text>"##,
        W - PAD,
        range.label
    );
    let _ = write!(
        out,
        r##"<line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/><text x="2" y="{}" font-size="10" fill="#666">{max_label}</text><text x="2" y="{}" font-size="10" fill="#666">0</text>"##,
        H - PAD,
        W - PAD,
        H - PAD,
        PAD + 4.0,
        H - PAD
    );
}

fn legend(out: &mut String, items: &[(&str, &str)]) {
    for (k, (label, color)) in items.iter().enumerate() {
        let lx = PAD + 120.0 * k as f64;
        let _ = write!(
            out,
            r##"<rect x="{lx}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}" font-size="11" fill="#333">{label}</text>"##,
            H - 14.0,
            lx + 14.0,
            H - 5.0
        );
    }
}

/// Lines, one per series; a bin without a value breaks its line.
fn lines(
    title: &str,
    range: Range,
    unit: &str,
    series: &[(&str, &str, Vec<Option<f64>>)],
) -> String {
    let n = series.first().map_or(0, |s| s.2.len());
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().flatten())
        .fold(0.0_f64, |a, b| a.max(*b))
        .max(1.0);
    let mut out = String::new();
    frame(&mut out, title, range, &format!("{}{unit}", round(max)), n);
    for (_, color, values) in series {
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, out: &mut String| {
            if let [alone] = run.as_slice() {
                // One bin between gaps: a dot, since a line of one point draws nothing.
                let (cx, cy) = alone.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    r##"<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>"##
                );
            } else if !run.is_empty() {
                let _ = write!(
                    out,
                    r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"##,
                    run.join(" ")
                );
            }
            run.clear();
        };
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => run.push(format!("{:.1},{:.1}", x(i, n), y(*v, max))),
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
    }
    legend(
        &mut out,
        &series.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
    );
    out.push_str("</svg>");
    out
}

fn round(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Attempts per bin, stacked by outcome.
fn bars(range: Range, bins: &[AttemptBin]) -> String {
    let n = bins.len();
    let max = bins.iter().map(|b| b.total).max().unwrap_or(0).max(1) as f64;
    let mut out = String::new();
    frame(&mut out, "Attempts by outcome", range, &round(max), n);
    let width = ((W - 2.0 * PAD) / n.max(1) as f64 * 0.8).max(1.0);
    for (i, b) in bins.iter().enumerate() {
        let failed = (b.total - b.ok - b.dead).max(0);
        let mut base = 0.0;
        for (count, color) in [(b.ok, GREEN), (failed, AMBER), (b.dead, RED)] {
            if count > 0 {
                let top = y(base + count as f64, max);
                let bottom = y(base, max);
                let _ = write!(
                    out,
                    r##"<rect x="{:.1}" y="{top:.1}" width="{width:.1}" height="{:.1}" fill="{color}"/>"##,
                    x(i, n) - width / 2.0,
                    (bottom - top).max(0.5)
                );
                base += count as f64;
            }
        }
    }
    legend(
        &mut out,
        &[("delivered", GREEN), ("failed", AMBER), ("dead", RED)],
    );
    out.push_str("</svg>");
    out
}

fn chart(svg: String) -> AnyView {
    view! { <div class="chart-box" inner_html=svg></div> }.into_any()
}

/// Attempts by outcome, failure rate and latency over `range`.
pub fn attempt_charts(range: Range, rows: &[AttemptBin]) -> AnyView {
    let bins = range.fill(rows, |b| b.at);
    let failure: Vec<Option<f64>> = bins
        .iter()
        .map(|b| (b.total > 0).then(|| 100.0 * (b.total - b.ok) as f64 / b.total as f64))
        .collect();
    let p50: Vec<Option<f64>> = bins.iter().map(|b| percentile(&b.latency, 0.5)).collect();
    let p99: Vec<Option<f64>> = bins.iter().map(|b| percentile(&b.latency, 0.99)).collect();
    view! {
        {chart(bars(range, &bins))}
        {chart(lines("Failure rate", range, " %", &[("failed", RED, failure)]))}
        {chart(lines("Attempt latency", range, " ms", &[("p50", BLUE, p50), ("p99", PURPLE, p99)]))}
    }
    .into_any()
}

/// The fleet's backlog (due now) and lag (oldest undelivered) over `range`.
pub fn lag_chart(range: Range, rows: &[LagBin]) -> AnyView {
    let bins = range.fill(rows, |b| b.at);
    let due: Vec<Option<f64>> = bins.iter().map(|b| Some(b.due as f64)).collect();
    let lag: Vec<Option<f64>> = bins
        .iter()
        .map(|b| Some(b.oldest_undelivered_seconds))
        .collect();
    view! {
        {chart(lines("Backlog (due now)", range, "", &[("deliveries", AMBER, due)]))}
        {chart(lines("Lag (oldest undelivered)", range, " s", &[("seconds", RED, lag)]))}
    }
    .into_any()
}

/// A small line of one endpoint's success share per bin over `range`.
pub fn sparkline(range: Range, endpoint: Uuid, rows: &[SuccessBin]) -> AnyView {
    let starts = range.starts(Utc::now());
    let n = starts.len();
    let (w, h) = (96.0, 20.0);
    let mut points = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        if let Some(b) = rows
            .iter()
            .find(|b| b.endpoint_id == endpoint && b.at == *start)
            && b.total > 0
        {
            let share = b.ok as f64 / b.total as f64;
            let px = w * (i as f64 + 0.5) / n.max(1) as f64;
            points.push(format!("{px:.1},{:.1}", 2.0 + (h - 4.0) * (1.0 - share)));
        }
    }
    let line = if points.len() > 1 {
        format!(
            r##"<polyline fill="none" stroke="{GREEN}" stroke-width="1.5" points="{}"/>"##,
            points.join(" ")
        )
    } else {
        points
            .first()
            .map(|p| {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                format!(r##"<circle cx="{px}" cy="{py}" r="2" fill="{GREEN}"/>"##)
            })
            .unwrap_or_default()
    };
    let svg = format!(
        r##"<svg class="sparkline" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" data-points="{n}" aria-label="success, {}">{line}</svg>"##,
        range.label
    );
    view! { <span class="spark" inner_html=svg></span> }.into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_buckets() {
        let mut latency = vec![0; 12];
        latency[2] = 98; // up to 100 ms
        latency[7] = 2; // up to 5 s
        assert_eq!(percentile(&latency, 0.5), Some(100.0));
        assert_eq!(percentile(&latency, 0.99), Some(5000.0));
        assert_eq!(percentile(&[0; 12], 0.5), None);
    }

    #[test]
    fn a_range_fills_every_bin_and_draws_them_all() {
        assert_eq!(HOUR.bins(), 60);
        assert_eq!(DAY.bins(), 96);
        let now = Utc::now()
            .duration_trunc(Duration::minutes(1))
            .expect("minute");
        let rows = vec![AttemptBin {
            at: now,
            ok: 3,
            total: 4,
            dead: 1,
            latency: vec![1; 12],
        }];
        let bins = HOUR.fill(&rows, |b| b.at);
        assert_eq!(bins.len(), 60);
        assert_eq!(bins[59].total, 4, "the current minute is the last bin");
        let svg = bars(HOUR, &bins);
        assert!(svg.contains(r#"data-points="60""#), "{svg}");
        assert_eq!(
            svg.matches("<rect").count(),
            2 + 3,
            "two outcomes drawn, and the legend"
        );
    }
}
