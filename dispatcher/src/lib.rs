//! hookrelay-dispatcher: turns accepted events into signed deliveries.
//!
//! One `Dispatcher` runs the router (ingest lanes → events and delivery rows →
//! shard queues) and a sender per delivery shard (shard queue → signed POST →
//! attempt on record → ack) for each shard it leases in Postgres: dispatchers
//! share the shards fairly, and single active consumer on each shard queue keeps
//! two of them off one shard even while leases move.
//!
//! Broker connections: one consuming connection per session (`session`), rebuilt
//! after a failure; one for each of its two publishers (`parts`); and the gauges'
//! own, opened while they sample. On shutdown it stops consuming, lets in-flight
//! work finish within the grace period, leaves anything unfinished unacked for the
//! broker to redeliver, and gives its leases back.
#![forbid(unsafe_code)]

mod admission;
mod backoff;
mod batch_window;
mod breaker;
pub mod client;
mod consumer;
mod db_retry;
mod housekeeping;
mod jobs;
mod leases;
mod orphans;
mod outcome;
mod parts;
pub mod reach;
mod resolver;
mod router;
mod scheduler;
mod sender;
mod session;
mod settle;
mod signing_keys;
mod tasks;

use std::time::Duration;

use hookrelay_core::queue;
use hookrelay_core::{Config, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::parts::Parts;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("message broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker ended a consumer")]
    ConsumerEnded,
    /// A consumer task panicked or was aborted.
    #[error("a consumer task failed: {0}")]
    ConsumerFailed(String),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Egress(String),
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
        let parts = Parts::build(&self.config, &self.store, &self.broker)?;
        let maintenance_stop = CancellationToken::new();
        let maintenance = parts.maintenance(&self.config, &self.broker, &maintenance_stop);
        let in_flight = TaskTracker::new();

        self.consume(&parts, &in_flight, &shutdown).await;

        // Shutdown, in order: no new retries, jobs or chores; the deliveries in
        // flight finish (within the grace period); then the batchers they used stop;
        // the leases go back; the publishers close.
        maintenance_stop.cancel();
        maintenance.join().await;
        metrics::gauge!(hookrelay_core::metrics::SHARDS_HELD).set(0.0);
        in_flight.close();
        let Parts {
            sender,
            publisher,
            bulk_publisher,
            batchers_stop,
            batchers,
            ..
        } = parts;
        drop(sender);
        let grace = self.config.dispatcher.shutdown_grace;
        if tokio::time::timeout(grace, in_flight.wait()).await.is_err() {
            tracing::warn!(
                "shutdown grace period over; unfinished deliveries stay queued for redelivery"
            );
        }
        batchers_stop.cancel();
        batchers.join().await;
        if let Err(e) = self.store.release_leases(self.id).await {
            tracing::warn!(error = %e, "could not give the shard leases back; they expire");
        }
        publisher.close().await;
        bulk_publisher.close().await;
        tracing::info!("dispatcher stopped");
        Ok(())
    }

    /// Broker sessions, one after another, until `shutdown` fires.
    async fn consume(&self, parts: &Parts, in_flight: &TaskTracker, shutdown: &CancellationToken) {
        let topology = self.config.topology();
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            let session =
                self.session(&topology, &parts.router, &parts.sender, in_flight, shutdown);
            match session.await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatcher lost the broker; reconnecting");
                    if !backoff.wait(shutdown).await {
                        break;
                    }
                }
            }
        }
    }
}
