//! Retrying store calls while Postgres is unavailable, so a database restart
//! delays work instead of failing it. Only transient errors are retried
//! (`StoreError::is_transient`): a permanent one is handed back, so the caller can
//! dead-letter the message that caused it instead of retrying it forever.

use std::future::Future;

use hookrelay_core::store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::outcome::Outcome;

/// Runs `op` until it succeeds or fails for good; transient failures wait with
/// backoff. `Stopped` once `cancel` fires while waiting.
pub async fn until_done<T, F, Fut>(
    what: &str,
    cancel: &CancellationToken,
    mut op: F,
) -> Outcome<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::outage();
    loop {
        match op().await {
            Ok(v) => return Outcome::Done(v),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "{what} failed; retrying");
                if !backoff.wait(cancel).await {
                    return Outcome::Stopped;
                }
            }
            Err(e) => return Outcome::Refused(e),
        }
    }
}

/// Runs `op` until it succeeds, whatever the error: for work no message caused
/// (claiming due rows, leases), where holding on is all there is to do.
/// `None` if `cancel` fired first.
pub async fn until_ok<T, F, Fut>(what: &str, cancel: &CancellationToken, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::outage();
    loop {
        match until_done(what, cancel, &mut op).await {
            Outcome::Done(v) => return Some(v),
            Outcome::Stopped => return None,
            Outcome::Refused(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying");
                if !backoff.wait(cancel).await {
                    return None;
                }
            }
        }
    }
}
