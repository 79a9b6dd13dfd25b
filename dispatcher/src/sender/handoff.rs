//! Slow requests let go of their shard message: once every delivery still open in
//! a message is slow (or waiting for a request slot), they are leased in Postgres
//! and finished apart from the message, which is acked, so the shard's prefetch
//! never waits on one endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Sender;
use crate::db_retry;

/// A request open this long is slow: it no longer holds its shard message and it
/// counts against its endpoint's allowance of slow requests. Waiting this long for
/// a request slot counts the same towards letting go of the message.
pub(super) const SLOW_AFTER: Duration = Duration::from_secs(1);
/// How long a delivery waits when its endpoint has its fill of slow requests.
pub(super) const SLOW_PARK: Duration = Duration::from_secs(5);
/// A leased delivery is due again this long after its request must have ended.
pub(super) const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Counts the deliveries of one message that are slow or waiting for a slot.
#[derive(Default)]
pub(super) struct SlowWatch {
    slow: AtomicUsize,
    pub(super) changed: Notify,
}

impl SlowWatch {
    pub(super) fn enter(&self) -> SlowGuard<'_> {
        self.slow.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        SlowGuard(self)
    }

    /// Whether all `open` deliveries are slow or waiting.
    pub(super) fn all_slow(&self, open: usize) -> bool {
        self.slow.load(Ordering::SeqCst) >= open
    }
}

pub(super) struct SlowGuard<'a>(&'a SlowWatch);

impl Drop for SlowGuard<'_> {
    fn drop(&mut self) {
        self.0.slow.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sender {
    /// Makes these in-flight deliveries due after their requests could have ended
    /// (on the database's clock): should this process die, the scheduler sends them
    /// again once their claim has lapsed too.
    pub(super) async fn lease(&self, ids: &[Uuid], cancel: &CancellationToken) -> bool {
        let until = self.max_request_time + LEASE_MARGIN;
        let leases: Vec<(Uuid, Duration)> = ids.iter().map(|id| (*id, until)).collect();
        db_retry::until_ok("leasing slow deliveries", cancel, || {
            self.store.extend_due(&leases)
        })
        .await
        .is_some()
    }
}
