//! The dispatcher's minute chores: forgets idle endpoint gates and signing keys,
//! drops health rollup rows too old for the console to show, and moves deliveries
//! out of shard queues above today's shard count (left by a larger
//! `HOOKRELAY_SHARDS`). At start and then hourly: retention (partitions ahead,
//! expired days dropped).

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::Store;
use hookrelay_core::config::RetentionSettings;
use hookrelay_core::queue::{self, Publisher};
use hookrelay_core::time::to_chrono;
use tokio_util::sync::CancellationToken;

use crate::sender::Sender;

pub async fn run(
    sender: Arc<Sender>,
    publisher: Arc<Publisher>,
    broker: queue::Broker,
    retention: RetentionSettings,
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
                let gates = sender.admission.evict_idle(IDLE);
                let keys = sender.signing_keys.evict_idle(IDLE) + sender.profiles.evict_idle(IDLE);
                if gates + keys > 0 {
                    tracing::debug!(gates, keys, "forgot idle endpoints");
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
async fn retain(store: &Store, settings: &RetentionSettings) {
    match store
        .apply_retention(
            chrono::Utc::now(),
            to_chrono(settings.history),
            settings.bodies.map(to_chrono),
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
