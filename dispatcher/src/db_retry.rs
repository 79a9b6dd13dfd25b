//! Retrying store calls while Postgres is unavailable, so a database restart
//! delays work instead of failing it; shutdown ends the wait.

use std::future::Future;
use std::time::Duration;

use hookrelay_core::store::StoreError;
use tokio_util::sync::CancellationToken;

/// Runs `op` until it succeeds; `None` if `cancel` fired first.
pub async fn until_ok<T, F, Fut>(what: &str, cancel: &CancellationToken, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying in {pause:?}");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}
