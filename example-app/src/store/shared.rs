//! State every backend keeps beside its connections: the head it has seen
//! (for subscribers), its last failure (for `/health`), and its counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

use super::StoreStats;

pub(crate) struct Shared {
    pub head: watch::Sender<u64>,
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
        }
    }
}
