//! What a backend says about itself: its last failure (for `/health`) and
//! counters of its own work (for `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::StoreStats;

#[derive(Default)]
pub(crate) struct Status {
    /// The last failure of a store task; cleared by its next success.
    error: Mutex<Option<String>>,
    commits: AtomicU64,
    appends: AtomicU64,
    max_batch: AtomicU64,
}

impl Status {
    pub fn set_error(&self, e: Option<String>) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        *slot = e;
    }

    /// `Ok` unless the last store task failed, else why.
    pub fn result(&self) -> Result<(), String> {
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

    /// Counts one write transaction that carried `appends` appends.
    pub fn record_commit(&self, appends: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.appends.fetch_add(appends, Ordering::Relaxed);
        self.max_batch.fetch_max(appends, Ordering::Relaxed);
    }

    /// The counters; `handed_over` is the hand-off's to fill in.
    pub fn counters(&self) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
            handed_over: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_failure_stands_until_a_success() {
        let s = Status::default();
        assert_eq!(s.result(), Ok(()));
        s.set_error(Some("down".into()));
        assert_eq!(s.result(), Err("down".into()));
        s.set_error(None);
        assert_eq!(s.result(), Ok(()));
    }

    #[test]
    fn counts_commits_appends_and_the_largest_batch() {
        let s = Status::default();
        s.record_commit(3);
        s.record_commit(1);
        let c = s.counters();
        assert_eq!((c.commits, c.appends, c.max_batch), (2, 4, 3));
    }
}
