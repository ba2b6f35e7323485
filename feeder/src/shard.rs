//! `--shard I/N`: one of N feeder processes (on as many machines) that
//! share one run id and one schedule. The schedule is the whole run's, at
//! the whole rate; shard I sends the slots `i` with `i mod N = I - 1`, so
//! the shards' order ids never overlap and together they are exactly the
//! ids one feeder at the whole rate would send. Each shard paces on its own
//! clock, so the shards' slots interleave only as well as their starts agree.

use std::fmt;
use std::str::FromStr;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// The whole schedule, unsharded.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first slot this shard sends.
    pub fn first(&self) -> u64 {
        self.index - 1
    }

    /// This shard's slot after `slot` (one of its own).
    pub fn after(&self, slot: u64) -> u64 {
        slot.saturating_add(self.count)
    }

    /// This shard's share of `rate` (the whole schedule's).
    pub fn rate(&self, rate: f64) -> f64 {
        rate / self.count as f64
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard {s:?}: expected I/N with 1 <= I <= N, e.g. 2/3");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count || count > 10_000 {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn shards_cover_the_schedule_once() {
        let limit = 1000;
        let mut seen = BTreeSet::new();
        for i in 1..=3 {
            let s: Shard = format!("{i}/3").parse().expect("shard");
            let mut slot = s.first();
            while slot < limit {
                assert!(seen.insert(slot), "slot {slot} twice");
                slot = s.after(slot);
            }
        }
        assert_eq!(seen, (0..limit).collect());
    }

    #[test]
    fn bad_shards_say_the_form() {
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            let err = bad.parse::<Shard>().expect_err(bad);
            assert!(err.contains("I/N"), "{bad}: {err}");
        }
        assert_eq!("2/3".parse::<Shard>().expect("ok").to_string(), "2/3");
        assert_eq!(Shard::WHOLE.rate(300.0), 300.0);
    }
}
