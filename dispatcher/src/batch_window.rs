//! How long a batch waits to fill once its first item has arrived: briefly, or
//! longer while items arrive fast enough for the longer wait to pay.
//!
//! Every statement costs the database a fixed price (planning, a round trip, a
//! commit) besides its rows, so larger batches cost less per item and leave more of
//! the machine to everyone else. The priority lane's router waits briefly. The bulk
//! lane's router, and the claims of its deliveries, wait longer, but only while
//! their items arrive fast enough for the wait to add `min_gain` more (at the rate
//! of the last second): a modest tenant in the bulk lane is not held back for
//! nothing. Attempt records, which no one waits on to be delivered, do the same.

use std::time::Duration;

use hookrelay_core::queue::IngestLane;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The priority lane's router wait, and the bulk lane's while it is slow.
const SHORT: Duration = Duration::from_millis(2);
/// The bulk lane's router wait while its messages arrive fast.
const LONG: Duration = Duration::from_millis(50);
/// The bulk lane's claim wait, and the attempt records', while they arrive fast.
const STATEMENT_LONG: Duration = Duration::from_millis(25);
const SECOND: Duration = Duration::from_secs(1);

pub struct BatchWindow {
    short: Duration,
    long: Duration,
    /// Items the long wait must be expected to add to a batch.
    min_gain: f64,
    second_started: Instant,
    this_second: u64,
    last_second: u64,
}

impl BatchWindow {
    /// A router lane's window.
    pub fn router(lane: IngestLane, now: Instant) -> Self {
        match lane {
            IngestLane::Priority => Self::new(SHORT, SHORT, f64::INFINITY, now),
            IngestLane::Bulk => Self::new(SHORT, LONG, 2.0, now),
        }
    }

    /// The window of one claim statement for the bulk lane's deliveries, or of one
    /// write of attempt records: no wait at all while they are slow.
    pub fn statements(now: Instant) -> Self {
        Self::new(Duration::ZERO, STATEMENT_LONG, 1.0, now)
    }

    fn new(short: Duration, long: Duration, min_gain: f64, now: Instant) -> Self {
        Self {
            short,
            long,
            min_gain,
            second_started: now,
            this_second: 0,
            last_second: 0,
        }
    }

    /// Counts `items` taken at `now`.
    pub fn record(&mut self, items: usize, now: Instant) {
        self.roll(now);
        self.this_second += items as u64;
    }

    /// How long a batch whose first item arrived at `now` waits for more.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.roll(now);
        let per_second = self.last_second.max(self.this_second) as f64;
        if per_second * self.long.as_secs_f64() >= self.min_gain {
            self.long
        } else {
            self.short
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

/// The next item of a batch: one already waiting, else one arriving by `deadline`.
pub async fn next_by<T>(rx: &mut mpsc::Receiver<T>, deadline: Instant) -> Option<T> {
    match rx.try_recv() {
        Ok(next) => Some(next),
        Err(_) if Instant::now() >= deadline => None,
        Err(_) => tokio::time::timeout_at(deadline, rx.recv())
            .await
            .ok()
            .flatten(),
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
        let mut window = BatchWindow::router(IngestLane::Bulk, Instant::now());
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
        let mut window = BatchWindow::router(IngestLane::Priority, Instant::now());
        feed(&mut window, Duration::from_millis(1), 2).await;
        assert_eq!(window.wait(Instant::now()), SHORT);
    }

    #[tokio::test(start_paused = true)]
    async fn statements_wait_only_while_the_wait_would_double_a_batch() {
        let mut window = BatchWindow::statements(Instant::now());
        assert_eq!(window.wait(Instant::now()), Duration::ZERO);
        // 20 a second: the long wait would add half an item.
        feed(&mut window, Duration::from_millis(50), 2).await;
        assert_eq!(window.wait(Instant::now()), Duration::ZERO);
        // 50 a second: it adds one and a quarter.
        feed(&mut window, Duration::from_millis(20), 2).await;
        assert_eq!(window.wait(Instant::now()), STATEMENT_LONG);
        tokio::time::advance(Duration::from_millis(2100)).await;
        assert_eq!(window.wait(Instant::now()), Duration::ZERO);
    }
}
