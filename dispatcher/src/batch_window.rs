//! How long a router batch waits to fill once its first message has arrived.
//!
//! The priority lane waits briefly. The bulk lane waits longer, because its larger
//! batches cost the database less per event and so leave more of the machine to the
//! priority lane; but only while its messages arrive fast enough for the wait to pay
//! (at least `MIN_GAIN` more expected within the long wait, at the lane's rate over
//! the last second). A modest tenant in the bulk lane is not held back for nothing.

use std::time::Duration;

use hookrelay_core::queue::IngestLane;
use tokio::time::Instant;

/// The priority lane's wait, and the bulk lane's while it is slow.
const SHORT: Duration = Duration::from_millis(2);
/// The bulk lane's wait while its messages arrive fast.
const LONG: Duration = Duration::from_millis(50);
/// Messages the long wait must be expected to add to a batch.
const MIN_GAIN: f64 = 2.0;
const SECOND: Duration = Duration::from_secs(1);

pub struct BatchWindow {
    lane: IngestLane,
    second_started: Instant,
    this_second: u64,
    last_second: u64,
}

impl BatchWindow {
    pub fn new(lane: IngestLane, now: Instant) -> Self {
        Self {
            lane,
            second_started: now,
            this_second: 0,
            last_second: 0,
        }
    }

    /// Counts `messages` taken from the lane at `now`.
    pub fn record(&mut self, messages: usize, now: Instant) {
        self.roll(now);
        self.this_second += messages as u64;
    }

    /// How long a batch whose first message arrived at `now` waits for more.
    pub fn wait(&mut self, now: Instant) -> Duration {
        if self.lane == IngestLane::Priority {
            return SHORT;
        }
        self.roll(now);
        let per_second = self.last_second.max(self.this_second) as f64;
        if per_second * LONG.as_secs_f64() >= MIN_GAIN {
            LONG
        } else {
            SHORT
        }
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.second_started);
        if elapsed >= 2 * SECOND {
            // Idle for more than a second: nothing recent to go by.
            self.last_second = 0;
            self.this_second = 0;
            self.second_started = now;
        } else if elapsed >= SECOND {
            self.last_second = std::mem::take(&mut self.this_second);
            self.second_started += SECOND;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes one message every `gap` for `seconds`, as the router would.
    async fn feed(window: &mut BatchWindow, gap: Duration, seconds: u64) {
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            tokio::time::advance(gap).await;
            window.record(1, Instant::now());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_bulk_lane_waits_long_only_while_its_messages_arrive_fast() {
        let mut window = BatchWindow::new(IngestLane::Bulk, Instant::now());
        assert_eq!(
            window.wait(Instant::now()),
            SHORT,
            "nothing has arrived yet"
        );
        // 10 messages/s: the long wait would add half a message.
        feed(&mut window, Duration::from_millis(100), 2).await;
        assert_eq!(window.wait(Instant::now()), SHORT);
        // 50 messages/s: it adds two and a half.
        feed(&mut window, Duration::from_millis(20), 2).await;
        assert_eq!(window.wait(Instant::now()), LONG);
        // Quiet for more than a second: back to the short wait.
        tokio::time::advance(Duration::from_millis(2100)).await;
        assert_eq!(window.wait(Instant::now()), SHORT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_priority_lane_always_waits_briefly() {
        let mut window = BatchWindow::new(IngestLane::Priority, Instant::now());
        feed(&mut window, Duration::from_millis(1), 2).await;
        assert_eq!(window.wait(Instant::now()), SHORT);
    }
}
