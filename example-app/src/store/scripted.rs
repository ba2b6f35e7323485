//! A store whose log a unit test writes directly, holes and repeats
//! included: what a real backend must never deliver, so the subscriber and
//! the follower can be shown to refuse it.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::watch;

use super::{Appended, EventStore, NewEvent, StoreError, StoreStats, StoredEvent, TaskStatus};

pub(crate) struct ScriptedStore {
    /// In position order (stable for repeats).
    events: Mutex<Vec<StoredEvent>>,
    head: watch::Sender<u64>,
    tasks: TaskStatus,
    /// Reads asked of the store so far (`read_after`).
    reads: std::sync::atomic::AtomicU64,
}

impl ScriptedStore {
    /// A `CompanyRegistered` event at `position` (decodable by the projection).
    pub fn event(position: u64) -> StoredEvent {
        StoredEvent {
            position,
            kind: crate::domain::COMPANY_REGISTERED.into(),
            key: format!("c-{position}"),
            payload: format!("{{\"id\":\"c-{position}\",\"name\":\"Co {position}\"}}"),
        }
    }

    pub fn with_positions(positions: impl IntoIterator<Item = u64>) -> Arc<Self> {
        Self::with_events(positions.into_iter().map(Self::event).collect())
    }

    pub fn with_events(events: Vec<StoredEvent>) -> Arc<Self> {
        let store = Arc::new(ScriptedStore {
            events: Mutex::new(Vec::new()),
            head: watch::channel(0).0,
            tasks: TaskStatus::default(),
            reads: Default::default(),
        });
        store.add_events(events);
        store
    }

    /// How many reads the store has answered.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Commits events at these positions (filling holes or leaving new ones).
    pub fn add(&self, positions: impl IntoIterator<Item = u64>) {
        self.add_events(positions.into_iter().map(Self::event).collect());
    }

    fn add_events(&self, new: Vec<StoredEvent>) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.extend(new);
        events.sort_by_key(|e| e.position);
        let top = events.last().map_or(0, |e| e.position);
        drop(events);
        self.head
            .send_if_modified(|h| std::mem::replace(h, top) != top);
    }
}

impl EventStore for ScriptedStore {
    fn append(&self, _event: NewEvent) -> BoxFuture<'_, Result<Appended, StoreError>> {
        async {
            Err(StoreError::Unavailable(
                "a scripted store takes no appends".into(),
            ))
        }
        .boxed()
    }

    fn read_after(
        &self,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let out = events
            .iter()
            .filter(|e| e.position > after)
            .take(limit)
            .cloned()
            .collect();
        async { Ok(out) }.boxed()
    }

    fn take_own_after(&self, _after: u64, _limit: usize) -> Vec<StoredEvent> {
        Vec::new()
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        let head = *self.head.borrow();
        async move { Ok(head) }.boxed()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    fn tasks(&self) -> &TaskStatus {
        &self.tasks
    }

    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }

    fn describe(&self) -> String {
        "scripted".into()
    }
}
