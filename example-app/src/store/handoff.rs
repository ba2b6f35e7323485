//! What this process's subscribers learn without asking the store: the
//! highest committed position seen (they wait on it instead of polling) and
//! the events this process has just committed (applied from memory when they
//! are next in line, instead of read back).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

use super::StoredEvent;

/// How many own commits wait for a subscriber to take them; older ones are
/// dropped (a subscriber that far behind reads them from the store).
const RECENT_MAX: usize = 16 * 1024;

pub(crate) struct Handoff {
    head: watch::Sender<u64>,
    /// Events this process committed, in position order (with holes where
    /// other processes committed).
    recent: Mutex<VecDeque<StoredEvent>>,
    handed_over: AtomicU64,
}

impl Handoff {
    pub fn new(head: u64) -> Self {
        Handoff {
            head: watch::channel(head).0,
            recent: Mutex::new(VecDeque::new()),
            handed_over: AtomicU64::new(0),
        }
    }

    /// The head as it moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
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

    /// Keeps events this process has just committed (call before
    /// [`Handoff::publish_head`], so a woken subscriber finds them).
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

    /// Events taken from memory so far.
    pub fn handed_over(&self) -> u64 {
        self.handed_over.load(Ordering::Relaxed)
    }
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
        let s = Handoff::new(0);
        // 4 and 7 were committed by another process.
        s.remember([1, 2, 3, 5, 6, 8].map(ev));
        assert_eq!(positions(&s.take_next(0, 2)), [1, 2], "limit");
        assert_eq!(positions(&s.take_next(2, 100)), [3], "stops before a hole");
        assert!(s.take_next(3, 100).is_empty(), "4 is not ours");
        assert_eq!(positions(&s.take_next(4, 100)), [5, 6]);
        assert!(s.take_next(6, 100).is_empty());
        // A subscriber that read past them from the store drops them.
        assert!(s.take_next(8, 100).is_empty());
        assert_eq!(s.handed_over(), 5);
    }

    #[test]
    fn never_goes_back_and_stays_bounded() {
        let s = Handoff::new(0);
        s.remember([5, 6].map(ev));
        s.remember([3, 6, 7].map(ev));
        assert_eq!(positions(&s.take_next(4, 100)), [5, 6, 7]);
        s.remember((1..=(RECENT_MAX as u64 + 10)).map(ev).skip(7));
        assert!(s.take_next(7, 100).is_empty(), "the oldest were dropped");
        assert_eq!(s.take_next(10, usize::MAX).len(), RECENT_MAX);
    }

    #[test]
    fn the_head_only_rises() {
        let s = Handoff::new(5);
        let mut rx = s.subscribe();
        s.publish_head(3);
        assert!(!rx.has_changed().expect("open"));
        s.publish_head(9);
        assert_eq!(*rx.borrow_and_update(), 9);
    }
}
