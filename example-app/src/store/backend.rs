//! What differs between backends, and the one [`EventStore`] built on it.
//!
//! A backend brings its reads (events after a position, the head) and its
//! name; everything else an [`EventStore`] does is the same for all of them
//! and lives here once: appends go through the group-commit queue to the
//! backend's writer, own commits are handed to local subscribers in memory,
//! the head is published to them, and the status and counters are reported.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};

use super::group_commit::{self, AppendRequest, Committed};
use super::handoff::Handoff;
use super::status::{Status, Task, TaskStatus};
use super::{Appended, EventStore, NewEvent, StoreError, StoreStats, StoredEvent};

/// The reading side of one kind of store (SQLite, PostgreSQL); its writer
/// task drains the queue of the [`Store`] that holds it.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Names the backend in errors ("sqlite writer stopped").
    const NAME: &'static str;

    /// See [`EventStore::read_after`]; both SQL stores count in signed
    /// 64-bit integers.
    fn read_after(
        &self,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;

    /// The highest committed position (0 for an empty store), asked of the store.
    fn read_head(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The URL, password redacted.
    fn describe(&self) -> String;
}

/// An event store: a backend, the queue to its writer, and what the store
/// shares with the backend's tasks.
pub struct Store<B> {
    backend: B,
    writer: mpsc::Sender<AppendRequest>,
    shared: Arc<Shared>,
    append_timeout: Duration,
}

impl<B> Store<B> {
    pub(crate) fn new(
        backend: B,
        writer: mpsc::Sender<AppendRequest>,
        shared: Arc<Shared>,
        append_timeout: Duration,
    ) -> Self {
        Store {
            backend,
            writer,
            shared,
            append_timeout,
        }
    }
}

impl<B: Backend> EventStore for Store<B> {
    fn append(&self, event: NewEvent) -> BoxFuture<'_, Result<Appended, StoreError>> {
        group_commit::submit(&self.writer, event, self.append_timeout, B::NAME).boxed()
    }

    fn read_after(
        &self,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.backend.read_after(after, limit)
    }

    fn take_own_after(&self, after: u64, limit: usize) -> Vec<StoredEvent> {
        self.shared.handoff.take_next(after, limit)
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let head = self.backend.read_head().await?;
            self.shared.handoff.publish_head(head);
            Ok(head)
        }
        .boxed()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.shared.handoff.subscribe()
    }

    fn tasks(&self) -> &TaskStatus {
        &self.shared.status.tasks
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            handed_over: self.shared.handoff.handed_over(),
            ..self.shared.status.counters()
        }
    }

    fn describe(&self) -> String {
        self.backend.describe()
    }
}

/// What a store shares with its backend's tasks (writer, change watcher).
pub(crate) struct Shared {
    pub handoff: Handoff,
    pub status: Status,
}

impl Shared {
    pub fn new(head: u64) -> Self {
        Shared {
            handoff: Handoff::new(head),
            status: Status::default(),
        }
    }

    /// Answers every request of a batch with its commit's outcome. A
    /// committed batch's new events are kept for a local subscriber before
    /// the head is published, and the head before anyone is answered; a
    /// failed one is the writer's failure until its next commit, and its
    /// requests get the error (their outcome is unknown to them: 503).
    /// `took` is how long the store took to answer the batch.
    pub fn settle(
        &self,
        batch: &mut Vec<AppendRequest>,
        outcome: Result<Committed, String>,
        took: Duration,
    ) {
        match outcome {
            Ok(results) => {
                let settled = group_commit::pair(batch.drain(..), results);
                self.status.record_commit(settled.len() as u64, took);
                self.status.tasks.ok(Task::Writer);
                self.handoff.remember(
                    settled
                        .iter()
                        .filter(|(_, a)| a.created)
                        .map(|(_, a)| a.event.clone()),
                );
                let top = settled
                    .iter()
                    .map(|(_, a)| a.event.position)
                    .max()
                    .unwrap_or(0);
                self.handoff.publish_head(top);
                for (reply, appended) in settled {
                    let _ = reply.send(Ok(appended));
                }
            }
            Err(msg) => {
                self.status.tasks.failed(Task::Writer, msg.clone());
                for req in batch.drain(..) {
                    let _ = req.reply.send(Err(StoreError::Unavailable(msg.clone())));
                }
            }
        }
    }

    /// A change watcher (`task`) read `head` from the store: it works, and
    /// any process's commits up to `head` are published.
    pub fn seen(&self, task: Task, head: u64) {
        self.handoff.publish_head(head);
        self.status.tasks.ok(task);
    }
}
