//! The last 30 seconds of replies, per 100 ms and per instance: the view
//! samples the feeder's running totals every 100 ms and keeps the
//! differences in a ring, so memory is fixed whatever the rate or length.

use std::collections::VecDeque;

/// Samples kept: 30 s of 100 ms.
pub const SAMPLES: usize = 300;
/// Instances told apart; more share the last slot.
const MAX_INSTANCES: usize = 8;

/// One 100 ms slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// Successful replies per instance (index into [`Window::instances`]).
    pub ok: Vec<u32>,
    /// Rejected + indeterminate.
    pub failed: u32,
}

/// The ring of samples and the totals they were taken from.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub instances: Vec<String>,
    pub samples: VecDeque<Sample>,
    last_ok: Vec<u64>,
    last_failed: u64,
}

impl Window {
    /// Takes one sample: what changed since the previous `live`.
    pub fn sample(&mut self, live: &crate::Live) {
        // Totals per slot first (instances past the cap share the last one).
        let mut totals = vec![0u64; self.instances.len()];
        for (name, &total) in &live.by_instance {
            let i = self.index(name);
            if totals.len() <= i {
                totals.resize(i + 1, 0);
            }
            totals[i] += total;
        }
        self.last_ok.resize(totals.len(), 0);
        let ok = totals
            .iter()
            .zip(&self.last_ok)
            .map(|(now, before)| u32::try_from(now.saturating_sub(*before)).unwrap_or(u32::MAX))
            .collect();
        self.last_ok = totals;
        let failed = live.rejected + live.indeterminate;
        let s = Sample {
            ok,
            failed: u32::try_from(failed.saturating_sub(self.last_failed)).unwrap_or(u32::MAX),
        };
        self.last_failed = failed;
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    fn index(&mut self, name: &str) -> usize {
        if let Some(i) = self.instances.iter().position(|n| n == name) {
            return i;
        }
        if self.instances.len() < MAX_INSTANCES {
            self.instances.push(name.to_string());
            return self.instances.len() - 1;
        }
        MAX_INSTANCES - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(a: u64, b: u64, failed: u64) -> crate::Live {
        let mut l = crate::Live::default();
        l.by_instance.insert("a".into(), a);
        if b > 0 {
            l.by_instance.insert("b".into(), b);
        }
        l.indeterminate = failed;
        l
    }

    #[test]
    fn samples_are_differences_per_instance_and_the_ring_is_bounded() {
        let mut w = Window::default();
        w.sample(&live(10, 0, 0));
        w.sample(&live(25, 3, 1));
        assert_eq!(w.instances, ["a", "b"]);
        assert_eq!(
            w.samples[0],
            Sample {
                ok: vec![10],
                failed: 0
            }
        );
        assert_eq!(
            w.samples[1],
            Sample {
                ok: vec![15, 3],
                failed: 1
            }
        );
        for i in 0..(SAMPLES as u64 + 5) {
            w.sample(&live(25 + i, 3, 1));
        }
        assert_eq!(w.samples.len(), SAMPLES);
    }
}
