//! The event store: one trait, one backend per URL scheme.
//!
//! Every backend keeps the same contract, which the projection and the
//! migrator's reconciler rely on:
//! - each committed event has a global position, strictly increasing;
//! - a reader sees every committed event exactly once, in position order, with
//!   no gaps, also while several processes append at once;
//! - an append whose `(kind, key)` already exists appends nothing and returns
//!   the existing event (one `OrderPlaced` per order id, on every instance).
//!
//! - [`sqlite`], [`postgres`], [`nats`]: what differs per backend: the schema, the
//!   writer's transaction, reads, and how other processes' commits are seen.
//! - `backend`: [`Store`], the one [`EventStore`] over a backend.
//! - `group_commit`: the queue of appends to a backend's writer.
//! - `handoff`: the head and own commits given to local subscribers.
//! - `status`: each task's last failure ([`TaskStatus`]) and the writer's counters.
//! - [`url`]: parsing `sqlite:` / `postgres://` / `nats://` URLs.

mod backend;
mod group_commit;
mod handoff;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(test)]
pub(crate) mod scripted;
pub mod sqlite;
mod status;
pub mod url;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

pub use self::backend::Store;
pub use self::status::{Task, TaskStatus};
pub use self::url::StoreUrl;

/// An event to append. `(kind, key)` is the idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: String,
    pub key: String,
    /// The event body, JSON.
    pub payload: String,
}

/// A committed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: u64,
    pub kind: String,
    pub key: String,
    pub payload: String,
}

/// The result of an append: the event that holds the key, and whether this
/// append created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event: StoredEvent,
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be used as configured (bad URL, wrong file, bad
    /// credentials): retrying will not help.
    #[error("store configuration: {0}")]
    Config(String),
    /// The store is down or busy right now; the caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something that breaks the contract.
    #[error("store corrupt: {0}")]
    Corrupt(String),
}

/// Counters a backend keeps about its own work (exported on `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Write transactions committed.
    pub commits: u64,
    /// Append requests completed by those commits (new or existing keys).
    pub appends: u64,
    /// The most appends one transaction carried: > 1 shows group commit.
    pub max_batch: u64,
    /// The longest write transaction, µs (lock wait, writes, durable flush).
    pub commit_max_us: u64,
    /// Write transactions of 10 ms or more (each is logged).
    pub slow_commits: u64,
    /// Own commits a subscriber in this process took from memory instead of
    /// reading them back from the store.
    pub handed_over: u64,
}

/// An event log shared by every instance.
///
/// Futures are boxed so that the backend can be chosen at run time from the
/// URL (`Arc<dyn EventStore>`).
pub trait EventStore: Send + Sync {
    /// Appends one event durably, or returns the event that already holds its
    /// `(kind, key)`. Concurrent appends are committed together (group commit).
    fn append(&self, event: NewEvent) -> BoxFuture<'_, Result<Appended, StoreError>>;

    /// Up to `limit` committed events with a position above `after`, in
    /// position order, never skipping one that commits later.
    fn read_after(
        &self,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;

    /// Events this process committed at `after + 1`, `after + 2`, …, up to
    /// `limit`, without asking the store; empty when `after + 1` is not such a
    /// commit (then read it with [`EventStore::read_after`]). They are taken:
    /// a second caller with the same `after` gets nothing.
    fn take_own_after(&self, after: u64, limit: usize) -> Vec<StoredEvent>;

    /// The highest committed position (0 for an empty store), asked of the store.
    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The highest position this process has seen committed; changes as soon
    /// as any process commits, so subscribers wake without polling the store.
    fn watch_head(&self) -> watch::Receiver<u64>;

    /// The last outcome of each task that keeps this store usable from this
    /// process; a subscriber that applies the log reports as
    /// [`Task::Follower`].
    fn tasks(&self) -> &TaskStatus;

    /// `Ok` while every task's last attempt succeeded, else each failing
    /// task and why (for `/health`).
    fn status(&self) -> Result<(), String> {
        self.tasks().result()
    }

    fn stats(&self) -> StoreStats;

    /// The URL, password redacted.
    fn describe(&self) -> String;
}

/// Tunables shared by the backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Upper bound on appends per write transaction.
    pub max_batch: usize,
    /// How long an append may wait for the store before it is reported unavailable.
    pub append_timeout: Duration,
    /// How long to try reaching the store at start-up before giving up.
    pub connect_timeout: Duration,
    /// How often another process's commits are looked for (SQLite), and the
    /// safety-net poll of every subscriber.
    pub poll_interval: Duration,
    /// SQLite: the WAL length (bytes) past which the poller restarts it.
    /// Readers that never pause (this instance's and the other's) keep
    /// passive checkpoints from ever restarting the WAL, so without this it
    /// grows for as long as the load lasts (446 MB in 20 s at 10,000
    /// orders/s).
    pub wal_limit: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_batch: 1024,
            append_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(2),
            wal_limit: 64 * 1024 * 1024,
        }
    }
}

/// Opens the backend named by `url`.
pub async fn open(url: &StoreUrl, opts: StoreOptions) -> Result<Arc<dyn EventStore>, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path, opts).await?)),
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(_) => Ok(Arc::new(postgres::PostgresStore::open(url, opts).await?)),
        #[cfg(feature = "nats")]
        StoreUrl::Nats(nats) => Ok(Arc::new(nats::NatsStore::open(nats, opts).await?)),
        // A build without some backend (scripts/demo.sh builds SQLite only).
        #[allow(unreachable_patterns)]
        other => Err(StoreError::Config(not_built(other))),
    }
}

/// Why a store URL this build cannot open is refused, and how to get a build
/// that can.
#[cfg_attr(all(feature = "postgres", feature = "nats"), allow(dead_code))]
fn not_built(url: &StoreUrl) -> String {
    let mut built = vec!["sqlite:"];
    if cfg!(feature = "postgres") {
        built.push("postgres://");
    }
    if cfg!(feature = "nats") {
        built.push("nats://");
    }
    format!(
        "--store {url}: this example-app was built without the {:?} feature, \
         so it can open only {}; build it with its default features \
         (cargo build --release --bin example-app)",
        url.scheme(),
        built.join(", ")
    )
}

/// A cursor over the log that waits for new events: what the projection
/// follows and what the contract tests check.
///
/// Every batch it returns continues the cursor exactly: the first event is
/// at `cursor + 1` and each next one at the previous plus one. A batch that
/// does not (a position skipped, repeated or going back) is an error and
/// moves nothing, so a caller never applies out of order; the next read
/// asks the store again from the same position.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    head: watch::Receiver<u64>,
    cursor: u64,
    batch: usize,
    poll: Duration,
}

impl Subscription {
    /// Starts after `position` (0: from the beginning).
    pub fn new(store: Arc<dyn EventStore>, position: u64) -> Self {
        let head = store.watch_head();
        Subscription {
            store,
            head,
            cursor: position,
            batch: 4096,
            poll: Duration::from_millis(100),
        }
    }

    /// The position of the last event returned.
    pub fn position(&self) -> u64 {
        self.cursor
    }

    /// The next events after the cursor, waiting until there is at least one.
    /// An error leaves the cursor where it was.
    pub async fn next(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        loop {
            let events = self.read().await?;
            if !events.is_empty() {
                return Ok(events);
            }
            self.wait().await;
        }
    }

    /// One look for the events after the cursor, without waiting: empty when
    /// there are none yet (then [`Subscription::wait`]). An error leaves the
    /// cursor where it was.
    pub async fn read(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        // Mark the current head as seen before reading, so a commit that
        // lands after the read still wakes the wait.
        self.head.borrow_and_update();
        // This process's own commits come from memory when they are next in
        // line; anything else (another process's commit first) is read from
        // the store, so positions still apply strictly in order.
        let mut events = self.store.take_own_after(self.cursor, self.batch);
        if events.is_empty() {
            events = self.store.read_after(self.cursor, self.batch).await?;
        }
        check_continues(self.cursor, &events)?;
        if let Some(last) = events.last() {
            self.cursor = last.position;
        }
        Ok(events)
    }

    /// Waits until a commit is seen (by this process or any other), or the
    /// safety-net poll interval passes.
    pub async fn wait(&mut self) {
        let _ = self.wait_at_most(self.poll).await;
    }

    /// [`Subscription::wait`], for at most `limit` instead of the poll
    /// interval: a reader backing off after an error wakes on a commit.
    /// True when a commit ended the wait.
    pub async fn wait_at_most(&mut self, limit: Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.head.changed()).await,
            Ok(Ok(()))
        )
    }
}

/// `Ok` when `events` are at `after + 1`, `after + 2`, … with none skipped.
fn check_continues(after: u64, events: &[StoredEvent]) -> Result<(), StoreError> {
    let mut prev = after;
    for e in events {
        if e.position <= prev {
            return Err(StoreError::Corrupt(format!(
                "position {} delivered after {prev}",
                e.position
            )));
        }
        if e.position != prev + 1 {
            return Err(StoreError::Corrupt(format!(
                "position {} delivered after {prev}: {} skipped",
                e.position,
                skipped(prev, e.position)
            )));
        }
        prev = e.position;
    }
    Ok(())
}

/// The positions strictly between `prev` and `next`, for the error message.
fn skipped(prev: u64, next: u64) -> String {
    if next - prev == 2 {
        format!("position {} was", prev + 1)
    } else {
        format!("positions {}..={} were", prev + 1, next - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::scripted::ScriptedStore;
    use super::*;

    fn positions(events: &[StoredEvent]) -> Vec<u64> {
        events.iter().map(|e| e.position).collect()
    }

    #[tokio::test]
    async fn a_batch_continues_the_cursor_exactly() {
        let store = ScriptedStore::with_positions(1..=3);
        let mut sub = Subscription::new(store.clone(), 0);
        assert_eq!(positions(&sub.next().await.expect("read")), [1, 2, 3]);
        assert_eq!(sub.position(), 3);
        assert!(sub.read().await.expect("read").is_empty());
    }

    /// Blind spot 6: positions that only increased were accepted, so a
    /// skipped one went unnoticed.
    #[tokio::test]
    async fn a_skipped_position_is_an_error_that_moves_nothing() {
        let store = ScriptedStore::with_positions([1, 2, 4, 5]);
        let mut sub = Subscription::new(store.clone(), 0);
        let err = sub.read().await.expect_err("gap after 2");
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m == "position 4 delivered after 2: position 3 was skipped"),
            "{err}"
        );
        assert_eq!(sub.position(), 0, "nothing of the batch is taken");
        // The next read asks the store again from the same position.
        store.add([3]);
        assert_eq!(positions(&sub.read().await.expect("read")), [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_gap_at_the_start_and_a_wider_one_are_named() {
        let store = ScriptedStore::with_positions([3, 4]);
        let mut sub = Subscription::new(store.clone(), 0);
        let err = sub.read().await.expect_err("gap before 3");
        assert!(
            err.to_string().contains("positions 1..=2 were skipped"),
            "{err}"
        );
        let repeated =
            ScriptedStore::with_events(vec![ScriptedStore::event(1), ScriptedStore::event(1)]);
        let err = Subscription::new(repeated, 0)
            .read()
            .await
            .expect_err("repeated");
        assert!(
            err.to_string().contains("position 1 delivered after 1"),
            "{err}"
        );
    }

    #[test]
    fn a_store_left_out_of_the_build_is_refused_by_name() {
        let url = StoreUrl::parse("postgres://app:s3cret@127.0.0.1:5432/db").expect("url");
        let msg = not_built(&url);
        assert!(
            msg.contains("--store postgres://app:***@127.0.0.1"),
            "{msg}"
        );
        assert!(msg.contains("\"postgres\" feature"), "{msg}");
        assert!(msg.contains("sqlite:"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
    }

    /// What the demo build (no PostgreSQL, no NATS) answers: a configuration
    /// error (exit 2), before any connection is tried.
    #[cfg(not(all(feature = "postgres", feature = "nats")))]
    #[tokio::test]
    async fn the_demo_build_refuses_stores_it_lacks() {
        for raw in [
            "postgres://app:s3cret@127.0.0.1:1/db",
            "nats://127.0.0.1:1/ORDERS",
        ] {
            let url = StoreUrl::parse(raw).expect("url");
            if cfg!(feature = "postgres") && url.scheme() == "postgres"
                || cfg!(feature = "nats") && url.scheme() == "nats"
            {
                continue;
            }
            match open(&url, StoreOptions::default()).await {
                Err(StoreError::Config(msg)) => {
                    assert!(msg.contains("feature"), "{msg}");
                    assert!(!msg.contains("s3cret"), "{msg}");
                }
                Err(e) => panic!("{raw}: not a configuration error: {e}"),
                Ok(_) => panic!("{raw}: opened"),
            }
        }
    }
}
