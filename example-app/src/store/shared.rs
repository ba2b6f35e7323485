//! State every backend keeps beside its connections: the head it has seen
//! (for subscribers), this process's own recent commits (handed to a
//! subscriber in memory), its last failure (for `/health`), and its counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::{Appended, NewEvent, StoreError, StoreStats, StoredEvent};

/// Where a writer sends one append's outcome.
pub(crate) type Reply = oneshot::Sender<Result<Appended, StoreError>>;

/// One append queued for a backend's writer task, which commits it with
/// others in one transaction (group commit).
pub(crate) struct AppendRequest {
    pub event: NewEvent,
    pub reply: Reply,
}

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

/// How many own commits wait for a subscriber to take them; older ones are
/// dropped (a subscriber that far behind reads them from the store).
const RECENT_MAX: usize = 16 * 1024;

pub(crate) struct Shared {
    pub head: watch::Sender<u64>,
    /// Events this process committed, in position order (with holes where
    /// other processes committed).
    recent: Mutex<VecDeque<StoredEvent>>,
    handed_over: AtomicU64,
    /// The last failure of a store task; cleared by its next success.
    error: Mutex<Option<String>>,
    commits: AtomicU64,
    appends: AtomicU64,
    max_batch: AtomicU64,
}

impl Shared {
    pub fn new(head: u64) -> Self {
        Shared {
            head: watch::channel(head).0,
            recent: Mutex::new(VecDeque::new()),
            handed_over: AtomicU64::new(0),
            error: Mutex::new(None),
            commits: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            max_batch: AtomicU64::new(0),
        }
    }

    /// Raises the published head (never lowers it).
    pub fn publish_head(&self, position: u64) {
        self.head.send_if_modified(|h| {
            if position > *h {
                *h = position;
                true
            } else {
                false
            }
        });
    }

    /// Settles a committed batch: keeps its new events for a local
    /// subscriber, publishes the head, then answers every request.
    pub fn committed(&self, batch: Vec<(Reply, Appended)>) {
        self.record_commit(batch.len() as u64);
        self.set_error(None);
        self.remember(
            batch
                .iter()
                .filter(|(_, a)| a.created)
                .map(|(_, a)| a.event.clone()),
        );
        let top = batch
            .iter()
            .map(|(_, a)| a.event.position)
            .max()
            .unwrap_or(0);
        self.publish_head(top);
        for (reply, appended) in batch {
            let _ = reply.send(Ok(appended));
        }
    }

    /// Keeps events this process has just committed (call before
    /// [`Shared::publish_head`], so a woken subscriber finds them).
    pub fn remember(&self, committed: impl IntoIterator<Item = StoredEvent>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        for e in committed {
            if recent
                .back()
                .is_some_and(|last| last.position >= e.position)
            {
                // Commits of one writer only move forward; anything else is
                // left to the store read.
                continue;
            }
            recent.push_back(e);
        }
        let excess = recent.len().saturating_sub(RECENT_MAX);
        recent.drain(..excess);
    }

    /// Own commits at `after + 1`, `after + 2`, … (stopping at the first
    /// position not held here, which another process committed or which was
    /// dropped): these are exactly what the store holds at those positions,
    /// so a subscriber at `after` may apply them without reading the store.
    /// Empty when `after + 1` is not an own commit. Events up to `after` are
    /// dropped: they have been delivered (a second subscriber in the process
    /// reads them from the store).
    pub fn take_next(&self, after: u64, limit: usize) -> Vec<StoredEvent> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let done = recent.partition_point(|e| e.position <= after);
        recent.drain(..done);
        let run = recent
            .iter()
            .take(limit)
            .zip(after + 1..)
            .take_while(|(e, want)| e.position == *want)
            .count();
        let out: Vec<StoredEvent> = recent.drain(..run).collect();
        drop(recent);
        self.handed_over
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        out
    }

    pub fn set_error(&self, e: Option<String>) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        *slot = e;
    }

    pub fn status(&self) -> Result<(), String> {
        match self
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(msg) => Err(msg.clone()),
            None => Ok(()),
        }
    }

    pub fn record_commit(&self, appends: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.appends.fetch_add(appends, Ordering::Relaxed);
        self.max_batch.fetch_max(appends, Ordering::Relaxed);
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
            handed_over: self.handed_over.load(Ordering::Relaxed),
        }
    }
}

/// Pairs each request's reply with its outcome: its position and, when the
/// key already existed, the stored payload instead of the request's.
pub(crate) fn settle(
    requests: impl Iterator<Item = (super::NewEvent, Reply)>,
    results: Vec<(u64, Option<String>)>,
) -> Vec<(Reply, Appended)> {
    requests
        .zip(results)
        .map(|((event, reply), (position, existing))| {
            let super::NewEvent { kind, key, payload } = event;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(position: u64) -> StoredEvent {
        StoredEvent {
            position,
            kind: "K".into(),
            key: format!("k{position}"),
            payload: "{}".into(),
        }
    }

    fn positions(events: &[StoredEvent]) -> Vec<u64> {
        events.iter().map(|e| e.position).collect()
    }

    #[test]
    fn hands_over_only_the_next_positions_in_line() {
        let s = Shared::new(0);
        // 4 and 7 were committed by another process.
        s.remember([1, 2, 3, 5, 6, 8].map(ev));
        assert_eq!(positions(&s.take_next(0, 2)), [1, 2], "limit");
        assert_eq!(positions(&s.take_next(2, 100)), [3], "stops before a hole");
        assert!(s.take_next(3, 100).is_empty(), "4 is not ours");
        assert_eq!(positions(&s.take_next(4, 100)), [5, 6]);
        assert!(s.take_next(6, 100).is_empty());
        // A subscriber that read past them from the store drops them.
        assert!(s.take_next(8, 100).is_empty());
        assert_eq!(s.stats().handed_over, 5);
    }

    #[test]
    fn never_goes_back_and_stays_bounded() {
        let s = Shared::new(0);
        s.remember([5, 6].map(ev));
        s.remember([3, 6, 7].map(ev));
        assert_eq!(positions(&s.take_next(4, 100)), [5, 6, 7]);
        s.remember((1..=(RECENT_MAX as u64 + 10)).map(ev).skip(7));
        assert!(s.take_next(7, 100).is_empty(), "the oldest were dropped");
        assert_eq!(s.take_next(10, usize::MAX).len(), RECENT_MAX);
    }
}
