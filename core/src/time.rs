//! Durations between the standard library's kind (settings, timers) and chrono's
//! (database times), saturating instead of failing on the out-of-range.

use std::time::Duration;

/// `d` as a chrono duration; one too long for chrono is its longest.
pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_durations_saturate() {
        assert_eq!(
            to_chrono(Duration::from_millis(1500)),
            chrono::Duration::milliseconds(1500)
        );
        assert_eq!(to_chrono(Duration::MAX), chrono::Duration::MAX);
    }
}
