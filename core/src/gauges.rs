//! Samples the fleet's gauges every few seconds: the backlog and lag from
//! Postgres, queue depths from the broker, this process's pool. Every gateway and
//! dispatcher reports the fleet-wide numbers (aggregate them with `max`), so the
//! lag stays visible while no dispatcher runs; one sampler per process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::Store;
use crate::metrics::{
    BROKER_DEAD_LETTERS, DEAD_DELIVERIES, DELIVERIES_DUE, OLDEST_UNDELIVERED, OPEN_CIRCUITS,
    ORDERED_HEAD_AGE, PAUSED_BACKLOG, QUEUE_MESSAGES,
};
use crate::queue::{self, Topology};
use ::metrics::gauge;
use lapin::Connection;
use tokio_util::sync::CancellationToken;

/// How often the gauges are read again.
pub const EVERY: Duration = Duration::from_secs(15);

static STARTED: AtomicBool = AtomicBool::new(false);

/// Samples until `stop` fires; returns at once if this process already samples.
pub async fn sample_until(
    store: Store,
    topology: Topology,
    amqp: queue::Broker,
    stop: CancellationToken,
) {
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let mut broker: Option<Connection> = None;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        sample_store(&store).await;
        if !sample_broker(&mut broker, &topology, &amqp).await {
            broker = None;
        }
    }
    if let Some(c) = broker {
        let _ = c.close(200, "bye".into()).await;
    }
    STARTED.store(false, Ordering::SeqCst);
}

async fn sample_store(store: &Store) {
    match store.backlog().await {
        Ok(b) => {
            gauge!(DELIVERIES_DUE).set(b.due as f64);
            gauge!(OLDEST_UNDELIVERED).set(b.oldest_undelivered_seconds);
            gauge!(DEAD_DELIVERIES).set(b.dead as f64);
            gauge!(OPEN_CIRCUITS).set(b.open_circuits as f64);
            // The console's backlog and lag charts.
            if let Err(e) = store
                .record_fleet_minute(b.due, b.oldest_undelivered_seconds)
                .await
            {
                tracing::debug!(error = %e, "metrics: cannot keep the backlog for the charts");
            }
        }
        Err(e) => tracing::debug!(error = %e, "metrics: cannot read the backlog"),
    }
    match store.held_numbers().await {
        Ok(h) => {
            gauge!(PAUSED_BACKLOG).set(h.paused_backlog as f64);
            gauge!(ORDERED_HEAD_AGE).set(h.oldest_head_seconds);
        }
        Err(e) => tracing::debug!(error = %e, "metrics: cannot read the held deliveries"),
    }
    crate::metrics::sample_pool(store);
}

/// Reads the queue depths on a connection kept between samples; `false` when the
/// broker could not be read (the connection is opened again next time).
async fn sample_broker(
    broker: &mut Option<Connection>,
    topology: &Topology,
    amqp: &queue::Broker,
) -> bool {
    if broker.is_none() {
        match tokio::time::timeout(Duration::from_secs(30), amqp.connect("dispatcher-metrics"))
            .await
        {
            Ok(Ok(c)) => *broker = Some(c),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot reach the broker for queue depths; next sample then");
                return false;
            }
            Err(_) => {
                tracing::debug!(
                    "connecting to the broker for queue depths timed out; next sample then"
                );
                return false;
            }
        }
    }
    let Some(connection) = broker.as_ref() else {
        return false;
    };
    let depths = async {
        let channel = connection.create_channel().await?;
        let depths = topology.depths(&channel).await;
        let _ = channel.close(200, "sampled".into()).await;
        depths
    };
    let Ok(Ok(depths)) = tokio::time::timeout(Duration::from_secs(3), depths).await else {
        return false;
    };
    let dead_queue = topology.dead_letter_queue();
    let ingest_queues = topology.ingest_queues();
    let (mut ingest, mut shards, mut dead) = (0u64, 0u64, 0u64);
    for (name, n) in depths {
        let n = u64::from(n);
        if ingest_queues.contains(&name) {
            ingest += n;
        } else if name == dead_queue {
            dead += n;
        } else {
            shards += n;
        }
    }
    gauge!(QUEUE_MESSAGES, "queue" => "ingest").set(ingest as f64);
    gauge!(QUEUE_MESSAGES, "queue" => "shards").set(shards as f64);
    gauge!(QUEUE_MESSAGES, "queue" => "dead").set(dead as f64);
    gauge!(BROKER_DEAD_LETTERS).set(dead as f64);
    true
}
