//! Converge sources: where the converge step reads B's applied position and
//! the store's head. The step's rule (reach the head, stay within
//! `max_lag` for `stable_for`) is the same for every source; only the
//! reading differs.

pub mod health;

use futures::future::BoxFuture;

use super::SourceError;
pub use health::HealthPositions;

/// One reading: how far B has applied, and how far the store goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    pub applied: u64,
    pub head: u64,
    /// B says it can serve: not draining, its store reachable (only the
    /// handover health document can say otherwise; other sources say true).
    pub ready: bool,
}

impl Positions {
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.applied)
    }
}

/// A way of reading B's progress against the store.
pub trait ConvergeSource: Send + Sync {
    /// One line saying what is read, for the printed plan.
    fn describe(&self) -> String;

    /// One reading.
    fn read(&self) -> BoxFuture<'_, Result<Positions, SourceError>>;
}
