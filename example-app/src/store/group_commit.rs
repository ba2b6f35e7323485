//! Group commit: appends queue for a backend's writer, which commits
//! everything that queued up during its previous commit in one transaction,
//! so the cost of a commit (an fsync, a lock, a round trip) is paid per batch,
//! not per append.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Appended, NewEvent, StoreError, StoredEvent};

/// Where a writer sends one append's outcome.
pub(crate) type Reply = oneshot::Sender<Result<Appended, StoreError>>;

/// One append queued for a backend's writer.
pub(crate) struct AppendRequest {
    pub event: NewEvent,
    pub reply: Reply,
}

/// Per request of a committed batch, in order: its position and, when its
/// key already existed, the stored payload.
pub(crate) type Committed = Vec<(u64, Option<String>)>;

/// Queues `event` for `writer` and waits for its commit, at most `timeout`:
/// a store that cannot commit in time is unavailable (503), not a hang.
pub(crate) async fn submit(
    writer: &mpsc::Sender<AppendRequest>,
    event: NewEvent,
    timeout: Duration,
    backend: &str,
) -> Result<Appended, StoreError> {
    let (reply, rx) = oneshot::channel();
    writer
        .send(AppendRequest { event, reply })
        .await
        .map_err(|_| StoreError::Unavailable(format!("{backend} writer stopped")))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(StoreError::Unavailable(format!("{backend} writer stopped"))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "append not committed within {timeout:?}"
        ))),
    }
}

/// Starts a batch with `first` and adds every request already queued behind
/// it, up to `max_batch`; never waits.
pub(crate) fn gather(
    batch: &mut Vec<AppendRequest>,
    first: AppendRequest,
    queue: &mut mpsc::Receiver<AppendRequest>,
    max_batch: usize,
) {
    batch.push(first);
    while batch.len() < max_batch {
        match queue.try_recv() {
            Ok(req) => batch.push(req),
            Err(_) => break,
        }
    }
}

/// Pairs each request's reply with its outcome: its position and, when the
/// key already existed, the stored payload instead of the request's.
pub(crate) fn pair(
    requests: impl Iterator<Item = AppendRequest>,
    results: Committed,
) -> Vec<(Reply, Appended)> {
    requests
        .zip(results)
        .map(|(AppendRequest { event, reply }, (position, existing))| {
            let NewEvent { kind, key, payload } = event;
            let created = existing.is_none();
            let event = StoredEvent {
                position,
                kind,
                key,
                payload: existing.unwrap_or(payload),
            };
            (reply, Appended { event, created })
        })
        .collect()
}
