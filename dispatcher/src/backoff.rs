//! The one backoff every retry loop of the dispatcher uses: doubling pauses from a
//! first to a largest one, cut short by shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { next: first, max }
    }

    /// 100 ms doubling to 5 s: how the dispatcher waits out a database or broker outage.
    pub fn outage() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The pause to take now; the next one is twice as long, up to the largest.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    /// Sleeps the next pause; `false` if `cancel` fired first.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let pause = self.next_pause();
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(pause) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pauses_double_up_to_the_largest_and_shutdown_ends_the_wait() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let pauses: Vec<_> = (0..4).map(|_| b.next_pause().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 350, 350]);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let start = tokio::time::Instant::now();
        assert!(b.wait(&CancellationToken::new()).await);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(!b.wait(&cancel).await);
    }
}
