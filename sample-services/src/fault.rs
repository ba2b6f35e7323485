//! `--lose-every N`: a deliberate, test-only bug. Every Nth well-formed
//! write is answered as if it had been stored (201) and is then forgotten.
//! A migration test runs a service with it to prove that handover's
//! reconciler names exactly those ids as lost. Never use it for anything
//! else.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts well-formed writes and says which one to lose.
#[derive(Debug, Default)]
pub struct LoseEvery {
    every: Option<u64>,
    writes: AtomicU64,
}

impl LoseEvery {
    /// `None` (or 0): lose nothing.
    pub fn new(every: Option<u64>) -> LoseEvery {
        LoseEvery {
            every: every.filter(|n| *n > 0),
            writes: AtomicU64::new(0),
        }
    }

    /// Counts one write; true for the Nth, 2Nth, … — the ones to drop.
    pub fn lose_this_one(&self) -> bool {
        let Some(every) = self.every else {
            return false;
        };
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        n % every == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loses_every_nth_write_and_nothing_when_off() {
        let f = LoseEvery::new(Some(3));
        let lost: Vec<bool> = (0..7).map(|_| f.lose_this_one()).collect();
        assert_eq!(lost, [false, false, true, false, false, true, false]);
        let off = LoseEvery::new(None);
        assert!((0..10).all(|_| !off.lose_this_one()));
        let zero = LoseEvery::new(Some(0));
        assert!((0..10).all(|_| !zero.lose_this_one()));
    }
}
