//! The task that keeps the projection in step with the store.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::projection::Projection;
use crate::store::{EventStore, StoreError, Subscription};

/// Applies every event after the projection's position, forever (until
/// cancelled). Store errors are logged and retried with a short backoff.
pub async fn follow(
    store: Arc<dyn EventStore>,
    projection: Arc<Projection>,
    cancel: CancellationToken,
) {
    let mut sub = Subscription::new(store, projection.applied());
    let mut backoff = Duration::from_millis(50);
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return,
            next = sub.next() => next,
        };
        match next {
            Ok(events) => {
                projection.apply(&events);
                backoff = Duration::from_millis(50);
            }
            Err(e) => {
                if matches!(e, StoreError::Corrupt(_)) {
                    tracing::error!(error = %e, "event log broke its contract");
                } else {
                    tracing::warn!(error = %e, "reading the store failed; retrying");
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Waits until the projection holds everything the store had when called.
pub async fn catch_up(
    store: &dyn EventStore,
    projection: &Projection,
    timeout: Duration,
) -> Result<u64, StoreError> {
    let head = store.head().await?;
    if projection.wait_applied(head, timeout).await {
        Ok(head)
    } else {
        Err(StoreError::Unavailable(format!(
            "projection did not reach position {head} within {timeout:?} (at {})",
            projection.applied()
        )))
    }
}
