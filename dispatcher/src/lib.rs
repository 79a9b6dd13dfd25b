//! hookrelay-dispatcher: turns accepted events into signed deliveries.
//!
//! One `Dispatcher` runs the router (ingest queue → events and delivery rows →
//! shard queues) and a sender per delivery shard (shard queue → signed POST →
//! attempt on record → ack). It holds one broker connection, rebuilds it after a
//! failure, and on shutdown stops consuming, lets in-flight work finish within the
//! grace period, and leaves anything unfinished unacked for the broker to redeliver.
#![forbid(unsafe_code)]

mod breaker;
pub mod client;
mod db_retry;
mod jobs;
mod lanes;
mod recorder;
mod resolver;
mod router;
mod scheduler;
mod sender;
mod shards;

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

use crate::client::WebhookClient;
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
}

impl Dispatcher {
    pub fn new(config: Config, store: Store) -> Self {
        Self { config, store }
    }

    /// Runs until `shutdown` fires, then drains. Broker failures are retried, not returned.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), DispatchError> {
        let c = &self.config;
        let topology = Topology::new(c.queue_prefix.clone(), c.shards);
        let recorder_cancel = CancellationToken::new();
        let (recorder, recorder_task) =
            Recorder::spawn(self.store.clone(), recorder_cancel.clone());
        let scheduler_wake = Arc::new(tokio::sync::Notify::new());
        let sender = Arc::new(Sender {
            store: self.store.clone(),
            retry: c.retry.clone(),
            scheduler_wake: scheduler_wake.clone(),
            cipher: Cipher::new(c.encryption_key.expose()),
            client: WebhookClient::new(c.delivery_timeout, c.target_policy())?,
            max_request_time: c.delivery_timeout.max(c.max_endpoint_timeout),
            recorder,
            lanes: crate::lanes::Lanes::new(c.breaker.clone(), c.endpoint_max_slow_requests),
            disable_failing_after: c.disable_failing_after,
            topology: topology.clone(),
            permits: Arc::new(Semaphore::new(c.max_in_flight)),
            prefetch: c.delivery_prefetch,
        });
        let publisher = Arc::new(Publisher::new(
            c.amqp_url.expose().clone(),
            "dispatcher-publisher",
            topology.clone(),
        ));
        let router = Arc::new(Router {
            store: self.store.clone(),
            publisher: publisher.clone(),
            prefetch: c.ingest_prefetch,
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
            }
            .run(scheduler_stop.clone()),
        );
        let sweeper = tokio::spawn(sweep_lanes(sender.clone(), scheduler_stop.clone()));

        let mut pause = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            match self
                .session(&topology, &router, &sender, &tracker, &shutdown)
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatcher lost the broker; reconnecting in {pause:?}");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }

        scheduler_stop.cancel();
        let _ = scheduler.await;
        let _ = jobs.await;
        let _ = sweeper.await;
        tracker.close();
        drop(sender);
        if tokio::time::timeout(self.config.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown grace period over; unfinished deliveries stay queued for redelivery"
            );
        }
        recorder_cancel.cancel();
        let _ = recorder_task.await;
        publisher.close().await;
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
        let connection =
            Arc::new(queue::connect(self.config.amqp_url.expose(), "dispatcher").await?);
        topology
            .declare(&connection.create_channel().await?)
            .await?;
        tracing::info!(shards = topology.shards(), "dispatcher consuming");

        let session = shutdown.child_token();
        let mut loops: JoinSet<Result<(), DispatchError>> = JoinSet::new();
        {
            let (router, connection, session) =
                (router.clone(), connection.clone(), session.clone());
            loops.spawn(async move { router.run(&connection, session).await });
        }
        for shard in 0..topology.shards() {
            loops.spawn(sender.clone().run_shard(
                connection.clone(),
                shard,
                session.clone(),
                tracker.clone(),
            ));
        }
        let mut outcome = Ok(());
        while let Some(joined) = loops.join_next().await {
            let result = joined.unwrap_or(Err(DispatchError::ConsumerEnded));
            if let Err(e) = result {
                // One consumer failing means the connection is suspect: restart them all.
                session.cancel();
                if outcome.is_ok() {
                    outcome = Err(e);
                }
            }
        }
        if outcome.is_ok() {
            // Shutdown: in-flight deliveries still need this connection to ack.
            let _ = tokio::time::timeout(self.config.shutdown_grace, wait_for(tracker)).await;
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

/// Forgets the lanes of endpoints that have gone quiet, every minute.
async fn sweep_lanes(sender: Arc<Sender>, stop: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(60);
    const IDLE: Duration = Duration::from_secs(600);
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let forgotten = sender.lanes.evict_idle(IDLE);
                if forgotten > 0 {
                    tracing::debug!(forgotten, "forgot idle endpoint lanes");
                }
            }
        }
    }
}
