//! One broker connection's life: the two router loops (one per ingest lane) and a
//! sender per shard this dispatcher leases, renewed on every heartbeat, until
//! shutdown (`Ok`) or a failure (`Err`, the caller reconnects). One consumer
//! failing makes the connection suspect, so every consumer of it restarts.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::queue::{self, Topology};
use lapin::Connection;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::leases::ShardSet;
use crate::router::Router;
use crate::sender::Sender;
use crate::{DispatchError, Dispatcher};

/// A consumer's end: its shard (`None` for a router loop) and how it ended.
type Ended = (Option<u16>, Result<(), DispatchError>);

impl Dispatcher {
    /// Consumes until shutdown (`Ok`) or failure (`Err`); `tracker` holds the
    /// in-flight deliveries, which still need this connection to ack.
    pub(crate) async fn session(
        &self,
        topology: &Topology,
        router: &Arc<Router>,
        sender: &Arc<Sender>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Result<(), DispatchError> {
        let connection = Arc::new(self.broker.connect("dispatcher").await?);
        topology.declare(&connection).await?;
        tracing::info!(shards = topology.shards(), "dispatcher consuming");

        let session = shutdown.child_token();
        let mut loops: JoinSet<Ended> = JoinSet::new();
        for lane in [queue::IngestLane::Priority, queue::IngestLane::Bulk] {
            let (router, connection, session) =
                (router.clone(), connection.clone(), session.clone());
            loops.spawn(async move { (None, router.run(&connection, lane, session).await) });
        }
        let mut shards = ShardSet::default();
        let heartbeat = self.config.dispatcher.shard_heartbeat;
        let mut tick = tokio::time::interval(heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut outcome = Ok(());
        loop {
            tokio::select! {
                _ = session.cancelled() => break,
                _ = tick.tick() => {
                    let drained: Vec<u16> = shards.drained.iter().copied().collect();
                    match self
                        .store
                        .heartbeat_leases(self.id, topology.shards(), heartbeat * 5, &drained)
                        .await
                    {
                        Ok(leases) => {
                            shards.drained.clear();
                            for shard in shards.apply(&leases, &session) {
                                let stop = shards.consuming[&shard].clone();
                                let sender = sender.clone();
                                let (connection, tracker) = (connection.clone(), tracker.clone());
                                loops.spawn(async move {
                                    (Some(shard), sender.run_shard(connection, shard, stop, tracker).await)
                                });
                            }
                            metrics::gauge!(hookrelay_core::metrics::SHARDS_HELD)
                                .set(shards.consuming.len() as f64);
                        }
                        // Keep consuming what we hold; if the leases expire meanwhile,
                        // single active consumer still keeps others off these shards.
                        Err(e) => tracing::warn!(error = %e, "could not renew the shard leases"),
                    }
                }
                Some(joined) = loops.join_next() => {
                    let (shard, result) = joined.unwrap_or_else(|e| (None, Err(DispatchError::ConsumerFailed(e.to_string()))));
                    match result {
                        Ok(()) => shards.ended(shard),
                        Err(e) => {
                            // One consumer failing means the connection is suspect: restart them all.
                            session.cancel();
                            outcome = Err(e);
                        }
                    }
                }
            }
        }
        while let Some(joined) = loops.join_next().await {
            let result = joined.map_or_else(
                |e| Err(DispatchError::ConsumerFailed(e.to_string())),
                |(_, r)| r,
            );
            if let Err(e) = result {
                if outcome.is_ok() {
                    outcome = Err(e);
                } else {
                    tracing::warn!(error = %e, "another consumer of the failed connection ended");
                }
            }
        }
        if outcome.is_ok() {
            // Shutdown: in-flight deliveries still need this connection to ack.
            let _ = tokio::time::timeout(self.config.dispatcher.shutdown_grace, wait_for(tracker))
                .await;
        }
        close(&connection).await;
        outcome
    }
}

/// Waits until the tracker has no running tasks, then lets it take new ones again.
async fn wait_for(tracker: &TaskTracker) {
    tracker.close();
    tracker.wait().await;
    tracker.reopen();
}

async fn close(connection: &Connection) {
    if connection.status().connected() {
        let _ =
            tokio::time::timeout(Duration::from_secs(5), connection.close(200, "bye".into())).await;
    }
}
