//! Keeping an in-memory copy fresh: reloaded every period until cancelled; a
//! reload that fails keeps the copy and is logged.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `reload` every `period` until `cancel` fires; `what` names the copy in logs.
pub async fn every<T, E, F, Fut>(
    what: &str,
    period: Duration,
    cancel: &CancellationToken,
    mut reload: F,
) where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if let Err(e) = reload().await {
            tracing::warn!(error = %e, "cannot refresh {what}; keeping the cached ones");
        }
    }
}
