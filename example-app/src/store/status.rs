//! What a store's tasks say about themselves: each task's last failure (for
//! `/health`) and counters of the writer's work (for `/metrics`).
//!
//! One slot per task, not one per store: with a single slot, the next
//! success of any task cleared the failure of another (the SQLite poller
//! seeing a commit hid a writer whose every append failed), so `/health`
//! said `store: ok` while this instance could not append.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::StoreStats;

/// A task that keeps a store usable from this process. Its status is the
/// outcome of its last attempt: a writer that failed and has had nothing to
/// commit since still reports that failure (only a commit proves it can
/// commit again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Commits appends (every backend).
    Writer,
    /// SQLite: looks for other processes' commits and checkpoints the WAL.
    Poller,
    /// PostgreSQL: `LISTEN`s for commits of any instance; NATS: follows
    /// the stream's head with a headers-only consumer.
    Listener,
    /// Reads the log after the projection's position and applies it here.
    Follower,
}

impl Task {
    /// Every task, in the order `/health` names them.
    pub const ALL: [Task; 4] = [Task::Writer, Task::Poller, Task::Listener, Task::Follower];

    /// How `/health` names it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Writer => "writer",
            Task::Poller => "poller",
            Task::Listener => "listener",
            Task::Follower => "follower",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One task's last failure. `failed` lets the writer's hot path (a success
/// after a success) skip the lock.
#[derive(Default)]
struct Slot {
    failed: AtomicBool,
    why: Mutex<Option<String>>,
}

/// The last outcome of each [`Task`]: the store is usable only while every
/// task's last attempt succeeded.
#[derive(Default)]
pub struct TaskStatus {
    slots: [Slot; Task::ALL.len()],
}

impl TaskStatus {
    /// `task`'s last attempt succeeded: clears its failure, no other's.
    pub fn ok(&self, task: Task) {
        let slot = &self.slots[task.index()];
        if !slot.failed.load(Ordering::Acquire) {
            return;
        }
        let mut why = slot.why.lock().unwrap_or_else(|p| p.into_inner());
        *why = None;
        slot.failed.store(false, Ordering::Release);
    }

    /// `task`'s last attempt failed, for this reason.
    pub fn failed(&self, task: Task, why: impl Into<String>) {
        let slot = &self.slots[task.index()];
        let mut held = slot.why.lock().unwrap_or_else(|p| p.into_inner());
        *held = Some(why.into());
        slot.failed.store(true, Ordering::Release);
    }

    /// Why `task`'s last attempt failed, if it did.
    pub fn failure(&self, task: Task) -> Option<String> {
        let slot = &self.slots[task.index()];
        if !slot.failed.load(Ordering::Acquire) {
            return None;
        }
        slot.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every failing task and why, in [`Task::ALL`] order.
    pub fn failures(&self) -> Vec<(Task, String)> {
        Task::ALL
            .iter()
            .filter_map(|&t| self.failure(t).map(|why| (t, why)))
            .collect()
    }

    /// `Ok` while every task's last attempt succeeded, else each failing
    /// task and why: `writer: append failed: …; follower: …`.
    pub fn result(&self) -> Result<(), String> {
        let failures = self.failures();
        if failures.is_empty() {
            return Ok(());
        }
        Err(failures
            .iter()
            .map(|(task, why)| format!("{task}: {why}"))
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// A store's task status and the writer's counters.
#[derive(Default)]
pub(crate) struct Status {
    pub tasks: TaskStatus,
    commits: AtomicU64,
    appends: AtomicU64,
    max_batch: AtomicU64,
    /// The longest write transaction so far, µs.
    commit_max_us: AtomicU64,
    /// Write transactions that took [`SLOW_COMMIT`] or longer.
    slow_commits: AtomicU64,
}

/// A commit this slow is logged: every append in it waited that long, so a
/// gap in the feeder's replies can be lined up with it (and with the disk).
pub const SLOW_COMMIT: Duration = Duration::from_millis(10);

impl Status {
    /// Counts one write transaction that carried `appends` appends and took
    /// `took` (from taking the batch to the store's answer: lock wait,
    /// writes, the durable flush).
    pub fn record_commit(&self, appends: u64, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.appends.fetch_add(appends, Ordering::Relaxed);
        self.max_batch.fetch_max(appends, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.commit_max_us.fetch_max(us, Ordering::Relaxed);
        if took >= SLOW_COMMIT {
            self.slow_commits.fetch_add(1, Ordering::Relaxed);
            tracing::info!(commit_ms = us as f64 / 1000.0, appends, "slow store commit");
        }
    }

    /// The counters; `handed_over` is the hand-off's to fill in.
    pub fn counters(&self) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
            commit_max_us: self.commit_max_us.load(Ordering::Relaxed),
            slow_commits: self.slow_commits.load(Ordering::Relaxed),
            handed_over: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_failure_stands_until_that_task_succeeds() {
        let s = TaskStatus::default();
        assert_eq!(s.result(), Ok(()));
        s.failed(Task::Writer, "append failed: disk I/O error");
        assert_eq!(
            s.result(),
            Err("writer: append failed: disk I/O error".into())
        );
        s.ok(Task::Writer);
        assert_eq!(s.result(), Ok(()));
    }

    /// Blind spot 5: with one slot per store, the listener's (or poller's)
    /// next success cleared the writer's failure.
    #[test]
    fn another_task_success_does_not_hide_a_failure() {
        let s = TaskStatus::default();
        s.failed(Task::Writer, "append failed: readonly");
        s.ok(Task::Listener);
        s.ok(Task::Poller);
        s.ok(Task::Follower);
        assert_eq!(s.result(), Err("writer: append failed: readonly".into()));
        assert_eq!(s.failure(Task::Listener), None);
    }

    #[test]
    fn every_failing_task_is_named_in_order() {
        let s = TaskStatus::default();
        s.failed(Task::Follower, "position 7 delivered after 5");
        s.failed(Task::Listener, "listen connection lost");
        s.failed(Task::Writer, "first");
        s.failed(Task::Writer, "second");
        assert_eq!(
            s.failures(),
            vec![
                (Task::Writer, "second".to_string()),
                (Task::Listener, "listen connection lost".to_string()),
                (Task::Follower, "position 7 delivered after 5".to_string()),
            ]
        );
        assert_eq!(
            s.result(),
            Err("writer: second; listener: listen connection lost; \
                 follower: position 7 delivered after 5"
                .into())
        );
    }

    #[test]
    fn counts_commits_appends_and_the_largest_batch() {
        let s = Status::default();
        s.record_commit(3, Duration::from_millis(12));
        s.record_commit(1, Duration::from_micros(300));
        let c = s.counters();
        assert_eq!((c.commits, c.appends, c.max_batch), (2, 4, 3));
        assert_eq!((c.commit_max_us, c.slow_commits), (12_000, 1));
    }
}
