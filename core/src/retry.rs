//! What happens after an attempt: delivered, retried at a jittered time from the
//! schedule (or when `Retry-After` says), or dead with a reason. Pure and
//! deterministic given `now` and a random draw, so it is tested without clocks.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Retry settings; the schedule is data (see `Config`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before retry n (1-based) is `schedule[n - 1]`; the last entry repeats.
    pub schedule: Vec<Duration>,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No attempt is scheduled later than this after the event was routed.
    pub max_age: Duration,
    /// Responses that end the delivery at once (410 always disables the endpoint).
    pub non_retryable: Vec<u16>,
    /// Each delay is drawn uniformly from `delay * (1 ± jitter)`.
    pub jitter: f64,
}

/// Bounds for a receiver's `Retry-After`.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        let m = 60;
        let h = 3600;
        Self {
            schedule: [
                5,
                30,
                2 * m,
                10 * m,
                30 * m,
                h,
                2 * h,
                4 * h,
                8 * h,
                16 * h,
                24 * h,
                24 * h,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            max_attempts: 13,
            max_age: Duration::from_secs(3 * 24 * h),
            non_retryable: Vec::new(),
            jitter: 0.2,
        }
    }
}

/// The outcome of one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptResult {
    /// HTTP status, or `None` when no response came (timeout, connection error, blocked).
    pub status: Option<u16>,
    /// A parsed `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    RetryAt(DateTime<Utc>),
    /// No more attempts; the reason says why.
    Dead(String),
    /// 410 Gone: the delivery is dead and the endpoint must be disabled.
    Gone,
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based) of a delivery routed at `routed_at`.
    /// `draw` is uniform in [0, 1): the jitter's randomness, passed in for testability.
    pub fn after_attempt(
        &self,
        attempt: u32,
        routed_at: DateTime<Utc>,
        result: AttemptResult,
        now: DateTime<Utc>,
        draw: f64,
    ) -> Verdict {
        match result.status {
            Some(s) if (200..300).contains(&s) => return Verdict::Delivered,
            Some(410) => return Verdict::Gone,
            Some(s) if self.non_retryable.contains(&s) => {
                return Verdict::Dead(format!("HTTP {s} is not retried"));
            }
            _ => {}
        }
        if attempt >= self.max_attempts {
            return Verdict::Dead(format!("gave up after {attempt} attempts"));
        }
        let delay = match result.retry_after {
            Some(d) if matches!(result.status, Some(429 | 503)) => {
                d.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER)
            }
            _ => self.jittered(self.delay_before(attempt + 1), draw),
        };
        let at = now + crate::time::to_chrono(delay);
        let age = (at - routed_at).to_std().unwrap_or(Duration::ZERO);
        if age > self.max_age {
            return Verdict::Dead(format!(
                "gave up: next attempt would be past the maximum age of {}",
                humantime::format_duration(self.max_age)
            ));
        }
        Verdict::RetryAt(at)
    }

    /// The scheduled delay before attempt `n` (n ≥ 2).
    pub fn delay_before(&self, n: u32) -> Duration {
        let i = (n.saturating_sub(2) as usize).min(self.schedule.len().saturating_sub(1));
        self.schedule
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }

    fn jittered(&self, d: Duration, draw: f64) -> Duration {
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * draw.clamp(0.0, 1.0);
        d.mul_f64(factor.max(0.0))
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }
    fn failed(status: Option<u16>) -> AttemptResult {
        AttemptResult { status, retry_after: None }
    }
    fn secs(v: &Verdict, from: DateTime<Utc>) -> f64 {
        match v {
            Verdict::RetryAt(at) => (*at - from).num_milliseconds() as f64 / 1000.0,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn follows_the_schedule_with_bounded_jitter() {
        let p = RetryPolicy::default();
        let now = t0();
        // Attempt 1 failed: retry 5 s later, ±20 %.
        assert_eq!(
            secs(&p.after_attempt(1, now, failed(Some(500)), now, 0.5), now),
            5.0
        );
        assert_eq!(
            secs(&p.after_attempt(1, now, failed(Some(500)), now, 0.0), now),
            4.0
        );
        assert!(
            (secs(
                &p.after_attempt(1, now, failed(Some(500)), now, 0.999_999),
                now
            ) - 6.0)
                .abs()
                < 0.01
        );
        // Attempt 3 failed: the third entry (2 min).
        assert_eq!(
            secs(&p.after_attempt(3, now, failed(None), now, 0.5), now),
            120.0
        );
        for draw in [0.0, 0.25, 0.5, 0.75, 0.99] {
            let s = secs(&p.after_attempt(2, now, failed(Some(503)), now, draw), now);
            assert!((24.0..=36.0).contains(&s), "{s}");
        }
    }

    #[test]
    fn the_last_entry_repeats() {
        let p = RetryPolicy {
            schedule: vec![Duration::from_secs(1), Duration::from_secs(7)],
            max_attempts: 10,
            ..Default::default()
        };
        assert_eq!(p.delay_before(2), Duration::from_secs(1));
        assert_eq!(p.delay_before(3), Duration::from_secs(7));
        assert_eq!(p.delay_before(9), Duration::from_secs(7));
    }

    #[test]
    fn stops_at_max_attempts_and_max_age() {
        let p = RetryPolicy { max_attempts: 3, ..Default::default() };
        let now = t0();
        assert!(matches!(
            p.after_attempt(2, now, failed(Some(500)), now, 0.5),
            Verdict::RetryAt(_)
        ));
        assert_eq!(
            p.after_attempt(3, now, failed(Some(500)), now, 0.5),
            Verdict::Dead("gave up after 3 attempts".into())
        );
        let old = now - chrono::Duration::days(3);
        assert!(
            matches!(p.after_attempt(2, old, failed(Some(500)), now, 0.5), Verdict::Dead(r) if r.contains("maximum age"))
        );
    }

    #[test]
    fn success_gone_and_non_retryable() {
        let p = RetryPolicy {
            non_retryable: vec![400, 422],
            ..Default::default()
        };
        let now = t0();
        assert_eq!(
            p.after_attempt(1, now, failed(Some(204)), now, 0.5),
            Verdict::Delivered
        );
        assert_eq!(
            p.after_attempt(1, now, failed(Some(410)), now, 0.5),
            Verdict::Gone
        );
        assert_eq!(
            p.after_attempt(1, now, failed(Some(422)), now, 0.5),
            Verdict::Dead("HTTP 422 is not retried".into())
        );
        // Other 4xx follow the schedule.
        assert!(matches!(
            p.after_attempt(1, now, failed(Some(404)), now, 0.5),
            Verdict::RetryAt(_)
        ));
    }

    #[test]
    fn honours_retry_after_within_bounds() {
        let p = RetryPolicy::default();
        let now = t0();
        let with = |status, secs| AttemptResult {
            status: Some(status),
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            secs(&p.after_attempt(1, now, with(429, 90), now, 0.0), now),
            90.0
        );
        assert_eq!(
            secs(&p.after_attempt(1, now, with(429, 0), now, 0.0), now),
            1.0
        );
        assert_eq!(
            secs(
                &p.after_attempt(1, now, with(503, 10 * 86_400), now, 0.0),
                now
            ),
            86_400.0
        );
        // Retry-After on a 500 is not a throttle signal: the schedule applies.
        assert_eq!(
            secs(&p.after_attempt(1, now, with(500, 90), now, 0.5), now),
            5.0
        );
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = t0();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
