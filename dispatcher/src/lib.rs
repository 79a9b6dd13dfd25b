//! hookrelay-dispatcher: turns accepted events into signed deliveries.
//!
//! One `Dispatcher` runs the router (ingest lanes → events and delivery rows →
//! shard queues) and a sender per delivery shard (shard queue → signed POST →
//! attempt on record → ack) for each shard it leases in Postgres: dispatchers
//! share the shards fairly, and single active consumer on each shard queue keeps
//! two of them off one shard even while leases move. It holds one broker
//! connection, rebuilds it after a failure, and on shutdown stops consuming, lets
//! in-flight work finish within the grace period, leaves anything unfinished
//! unacked for the broker to redeliver, and gives its leases back.
#![forbid(unsafe_code)]

mod backoff;
mod batch_window;
mod breaker;
mod claimer;
pub mod client;
mod db_retry;
mod isolate;
mod jobs;
mod lanes;
mod leases;
mod orphans;
mod recorder;
mod resolver;
mod router;
mod scheduler;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::crypto::Cipher;
use hookrelay_core::queue::{self, Publisher, Topology};
use hookrelay_core::{Config, Store};
use lapin::Connection;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::client::WebhookClient;
use crate::leases::ShardSet;
use crate::recorder::Recorder;
use crate::router::Router;
use crate::scheduler::Scheduler;
use crate::sender::Sender;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("message broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker ended a consumer")]
    ConsumerEnded,
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

pub struct Dispatcher {
    config: Config,
    store: Store,
    /// This dispatcher's name in the shard leases.
    id: Uuid,
    broker: queue::Broker,
}

impl Dispatcher {
    pub fn new(config: Config, store: Store) -> Self {
        Self {
            broker: queue::Broker::from_settings(&config.broker),
            config,
            store,
            id: Uuid::new_v4(),
        }
    }

    /// Runs until `shutdown` fires, then drains. Broker failures are retried, not returned.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), DispatchError> {
        // Before any metric handle is taken: handles taken earlier would record nowhere.
        hookrelay_core::metrics::handle();
        for counter in [
            hookrelay_core::metrics::EVENTS_ROUTED,
            hookrelay_core::metrics::DELIVERIES_CREATED,
        ] {
            metrics::counter!(counter).increment(0);
        }
        let c = &self.config;
        let topology = c.topology();
        let recorder_cancel = CancellationToken::new();
        let (recorder, recorder_task) =
            Recorder::spawn(self.store.clone(), recorder_cancel.clone());
        let scheduler_wake = Arc::new(tokio::sync::Notify::new());
        let publisher = Arc::new(Publisher::new(
            self.broker.clone(),
            "dispatcher-publisher",
            topology.clone(),
        ));
        let sender = Arc::new(Sender {
            store: self.store.clone(),
            retry: c.retry.policy(),
            scheduler_wake: scheduler_wake.clone(),
            cipher: Cipher::with_keys(&c.security.master_keys()),
            client: WebhookClient::new(c.delivery.timeout, c.target_policy())?,
            publisher: publisher.clone(),
            max_request_time: c.delivery.timeout.max(c.delivery.max_endpoint_timeout),
            drain_limit: c.dispatcher.shutdown_grace,
            recorder,
            claimer: crate::claimer::Claimer::spawn(
                self.store.clone(),
                crate::sender::CLAIM,
                recorder_cancel.clone(),
            ),
            lanes: crate::lanes::Lanes::new(
                c.breaker.clone(),
                c.delivery.endpoint_max_slow_requests,
                crate::lanes::share_of(c.delivery.max_in_flight, c.delivery.endpoint_slot_share),
                crate::lanes::share_of(c.delivery.max_in_flight, c.delivery.tenant_slot_share),
            ),
            disable_failing_after: c.delivery.disable_failing_after,
            topology: topology.clone(),
            permits: Arc::new(Semaphore::new(c.delivery.max_in_flight)),
            prefetch: c.broker.delivery_prefetch,
            // Loaded deliveries: a few rounds of requests' worth, so slots never idle.
            budget: crate::sender::LoadBudget::new(
                (4 * c.delivery.max_in_flight).max(2048),
                c.delivery.payload_budget_bytes,
            ),
            metrics: crate::sender::SenderMetrics::new(),
        });
        let bulk_publisher = Arc::new(Publisher::new(
            self.broker.clone(),
            "dispatcher-bulk-publisher",
            topology.clone(),
        ));
        let router = Arc::new(Router {
            store: self.store.clone(),
            publisher: publisher.clone(),
            bulk_publisher: bulk_publisher.clone(),
            prefetch: c.broker.ingest_prefetch,
            unsent_after: c.delivery.unsent_after,
        });
        let tracker = TaskTracker::new();
        let scheduler_stop = CancellationToken::new();
        let jobs = tokio::spawn(
            crate::jobs::JobWorker {
                store: self.store.clone(),
                scheduler_wake: scheduler_wake.clone(),
            }
            .run(scheduler_stop.clone()),
        );
        let scheduler = tokio::spawn(
            Scheduler {
                store: self.store.clone(),
                publisher: publisher.clone(),
                wake: scheduler_wake,
                lease: c.delivery.unsent_after,
            }
            .run(scheduler_stop.clone()),
        );
        let gauges = tokio::spawn(hookrelay_core::gauges::sample_until(
            self.store.clone(),
            topology.clone(),
            self.broker.clone(),
            scheduler_stop.clone(),
        ));
        let sweeper = tokio::spawn(housekeeping(
            sender.clone(),
            publisher.clone(),
            self.broker.clone(),
            c.retention.clone(),
            scheduler_stop.clone(),
        ));

        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            match self
                .session(&topology, &router, &sender, &tracker, &shutdown)
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatcher lost the broker; reconnecting");
                    if !backoff.wait(&shutdown).await {
                        break;
                    }
                }
            }
        }

        scheduler_stop.cancel();
        let _ = scheduler.await;
        let _ = jobs.await;
        let _ = sweeper.await;
        let _ = gauges.await;
        metrics::gauge!(hookrelay_core::metrics::SHARDS_HELD).set(0.0);
        tracker.close();
        drop(sender);
        if tokio::time::timeout(self.config.dispatcher.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown grace period over; unfinished deliveries stay queued for redelivery"
            );
        }
        recorder_cancel.cancel();
        let _ = recorder_task.await;
        if let Err(e) = self.store.release_leases(self.id).await {
            tracing::warn!(error = %e, "could not give the shard leases back; they expire");
        }
        publisher.close().await;
        bulk_publisher.close().await;
        tracing::info!("dispatcher stopped");
        Ok(())
    }

    /// One broker connection's life: consume until shutdown (`Ok`) or failure (`Err`).
    async fn session(
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
        let mut loops: JoinSet<(Option<u16>, Result<(), DispatchError>)> = JoinSet::new();
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
                    let (shard, result) = joined.unwrap_or((None, Err(DispatchError::ConsumerEnded)));
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
            if let Ok((_, Err(e))) = joined
                && outcome.is_ok()
            {
                outcome = Err(e);
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

/// Every minute: forgets idle endpoint lanes, drops health rollup rows too old for
/// the console to show, and moves deliveries out of shard queues above today's
/// shard count (left by a larger `HOOKRELAY_SHARDS`). At start and then hourly:
/// retention (partitions ahead, expired days dropped).
async fn housekeeping(
    sender: Arc<Sender>,
    publisher: Arc<Publisher>,
    broker: queue::Broker,
    retention: hookrelay_core::config::RetentionSettings,
    stop: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(60);
    const IDLE: Duration = Duration::from_secs(600);
    const RETENTION_EVERY: Duration = Duration::from_secs(3600);
    let mut tick = tokio::time::interval(EVERY);
    let mut retained_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let forgotten = sender.lanes.evict_idle(IDLE);
                if forgotten > 0 {
                    tracing::debug!(forgotten, "forgot idle endpoint lanes");
                }
                if let Err(e) = sender.store.prune_health_minutes().await {
                    tracing::debug!(error = %e, "pruning the health rollup failed; next minute then");
                }
                crate::orphans::drain(&sender.store, &publisher, &broker).await;
                if retained_at.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
                    retained_at = Some(tokio::time::Instant::now());
                    retain(&sender.store, &retention).await;
                }
            }
        }
    }
}

/// One retention pass; failures are logged and tried again at the next pass.
async fn retain(
    store: &hookrelay_core::Store,
    settings: &hookrelay_core::config::RetentionSettings,
) {
    let as_chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    match store
        .apply_retention(
            chrono::Utc::now(),
            as_chrono(settings.history),
            settings.bodies.map(as_chrono),
        )
        .await
    {
        Ok(Some(pruned)) if pruned != hookrelay_core::store::Pruned::default() => {
            tracing::info!(?pruned, "retention applied");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "retention pass failed; next hour then"),
    }
}
