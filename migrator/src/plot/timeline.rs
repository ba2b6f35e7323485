//! The ack log streamed into fixed 100 ms [`Bucket`]s (counts per instance
//! and outcome, plus a small fixed log-scale latency histogram), so memory
//! grows with the run's length, never with its rate.

use std::collections::BTreeMap;
use std::path::Path;

use handover_contract::{AckRecord, Outcome};

use super::PlotError;

/// Width of one bucket.
pub const BUCKET_NS: u64 = 100_000_000;
/// A timeline longer than this (in buckets: 12 hours) is refused, not drawn.
pub(super) const MAX_BUCKETS: u64 = 12 * 3600 * 10;
/// Instances beyond this many share the last colour as "other".
pub(super) const MAX_INSTANCES: usize = 8;
/// Latency histogram: 4 sub-buckets per power of two from 1 µs, up to ~2^31 µs.
const LAT_SLOTS: usize = 4 * 32;

/// One 100 ms slice of the run.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Successful replies per instance index (see [`Timeline::instances`]).
    pub ok: Vec<u32>,
    pub rejected: u32,
    pub indeterminate: u32,
    latency: Box<[u32; LAT_SLOTS]>,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            ok: Vec::new(),
            rejected: 0,
            indeterminate: 0,
            latency: Box::new([0; LAT_SLOTS]),
        }
    }

    /// The latency under which 99 % of this bucket's replies fell, in ms
    /// (upper edge of its histogram slot: at most ~19 % high).
    pub fn p99_ms(&self) -> Option<f64> {
        let total: u64 = self.latency.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = (total * 99).div_ceil(100);
        let mut seen = 0u64;
        for (slot, &c) in self.latency.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(slot_upper_us(slot) / 1000.0);
            }
        }
        None
    }
}

fn latency_slot(us: u64) -> usize {
    let us = us.max(1);
    let pow = 63 - us.leading_zeros() as usize;
    let frac = if pow >= 2 {
        ((us >> (pow - 2)) & 3) as usize
    } else {
        ((us << (2 - pow)) & 3) as usize
    };
    (pow * 4 + frac).min(LAT_SLOTS - 1)
}

fn slot_upper_us(slot: usize) -> f64 {
    let pow = (slot / 4) as i32;
    let frac = (slot % 4) as f64;
    2f64.powi(pow) * (1.0 + (frac + 1.0) / 4.0)
}

/// The whole run, bucketed.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Instance names in order of first reply; the last may be "other".
    pub instances: Vec<String>,
    /// Keyed by `done_ns / BUCKET_NS`.
    pub buckets: BTreeMap<u64, Bucket>,
    /// First reply of the instance that answered last, when it differs from
    /// the one that answered first: the handover moment.
    pub first_new_ns: Option<u64>,
    first_ns_by_instance: Vec<u64>,
    last_instance: Option<usize>,
}

impl Timeline {
    /// Adds one ack.
    pub fn add(&mut self, ack: &AckRecord) -> Result<(), PlotError> {
        let key = ack.done_ns / BUCKET_NS;
        if let (Some((&lo, _)), Some((&hi, _))) = (
            self.buckets.first_key_value(),
            self.buckets.last_key_value(),
        ) {
            let span = hi.max(key) - lo.min(key);
            if span > MAX_BUCKETS {
                return Err(PlotError::TooLong { seconds: span / 10 });
            }
        }
        let instance = match (&ack.instance, ack.outcome) {
            (Some(name), Outcome::Ok) => {
                let i = self.instance_index(name, ack.done_ns);
                self.last_instance = Some(i);
                Some(i)
            }
            (None, Outcome::Ok) => Some(self.instance_index("unnamed", ack.done_ns)),
            _ => None,
        };
        let b = self.buckets.entry(key).or_insert_with(Bucket::new);
        match (ack.outcome, instance) {
            (Outcome::Rejected, _) => b.rejected += 1,
            (Outcome::Indeterminate, _) | (Outcome::Ok, None) => b.indeterminate += 1,
            (Outcome::Ok, Some(i)) => {
                if b.ok.len() <= i {
                    b.ok.resize(i + 1, 0);
                }
                b.ok[i] += 1;
            }
        }
        b.latency[latency_slot(ack.latency_us)] += 1;
        Ok(())
    }

    fn instance_index(&mut self, name: &str, done_ns: u64) -> usize {
        let i = match self.instances.iter().position(|n| n == name) {
            Some(i) => i,
            None if self.instances.len() < MAX_INSTANCES - 1 => {
                self.instances.push(name.to_string());
                self.first_ns_by_instance.push(done_ns);
                self.instances.len() - 1
            }
            None => match self.instances.iter().position(|n| n == "other") {
                Some(i) => i,
                None => {
                    self.instances.push("other".into());
                    self.first_ns_by_instance.push(done_ns);
                    self.instances.len() - 1
                }
            },
        };
        if let Some(first) = self.first_ns_by_instance.get_mut(i) {
            *first = (*first).min(done_ns);
        }
        i
    }

    fn finish(&mut self) {
        self.first_new_ns = match self.last_instance {
            Some(i) if i > 0 => self.first_ns_by_instance.get(i).copied(),
            _ => None,
        };
    }

    /// Streams an ack log into a timeline.
    pub fn from_file(acks: &Path) -> Result<Self, PlotError> {
        Self::from_files(&[acks.to_path_buf()])
    }

    /// The timeline of several feeders' ack logs, merged in completion order.
    pub fn from_files(acks: &[std::path::PathBuf]) -> Result<Self, PlotError> {
        let mut t = Timeline::default();
        let mut failure: Option<PlotError> = None;
        let read = crate::reconcile::merged::for_each_merged(acks, |ack| {
            t.add(ack).map_err(|e| {
                let text = e.to_string();
                failure = Some(e);
                text
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
        read?;
        t.finish();
        Ok(t)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ack(done_ns: u64, instance: &str, outcome: Outcome, latency_us: u64) -> AckRecord {
        AckRecord {
            id: format!("o{done_ns}"),
            due_ns: done_ns,
            done_ns,
            outcome,
            status: None,
            instance: Some(instance.into()),
            latency_us,
            user_id: None,
            items_digest: None,
        }
    }

    #[test]
    fn latency_slots_are_monotonic_and_bound_the_value() {
        let mut prev = 0;
        for us in [1, 2, 3, 5, 8, 100, 999, 1000, 4096, 1_000_000, u64::MAX] {
            let slot = latency_slot(us);
            assert!(slot >= prev, "{us}");
            prev = slot;
            if us < 1 << 30 {
                assert!(slot_upper_us(slot) >= us as f64, "{us} in slot {slot}");
                assert!(
                    slot_upper_us(slot) <= us as f64 * 1.5 + 1.0,
                    "{us} in slot {slot}"
                );
            }
        }
    }

    #[test]
    fn buckets_count_by_instance_and_outcome_and_find_the_handover() {
        let mut t = Timeline::default();
        let base = 1_700_000_000_000_000_000u64;
        for i in 0..10 {
            t.add(&ack(base + i * 10_000_000, "a", Outcome::Ok, 1000))
                .unwrap();
        }
        t.add(&ack(base + 150_000_000, "a", Outcome::Indeterminate, 5000))
            .unwrap();
        t.add(&ack(base + 160_000_000, "b", Outcome::Ok, 2000))
            .unwrap();
        t.add(&ack(base + 170_000_000, "a", Outcome::Ok, 2000))
            .unwrap();
        t.add(&ack(base + 250_000_000, "b", Outcome::Ok, 2000))
            .unwrap();
        t.finish();
        assert_eq!(t.instances, ["a", "b"]);
        assert_eq!(t.buckets.len(), 3);
        let first = t.buckets.values().next().unwrap();
        assert_eq!(first.ok, [10]);
        assert!((1.0..=1.25).contains(&first.p99_ms().unwrap()));
        let second = t.buckets.values().nth(1).unwrap();
        assert_eq!(second.ok, [1, 1]);
        assert_eq!(second.indeterminate, 1);
        assert_eq!(t.first_new_ns, Some(base + 160_000_000));
    }

    #[test]
    fn an_absurd_time_span_is_refused() {
        let mut t = Timeline::default();
        t.add(&ack(1_000_000_000, "a", Outcome::Ok, 1)).unwrap();
        let err = t
            .add(&ack(
                1_000_000_000 + 13 * 3600 * 1_000_000_000,
                "a",
                Outcome::Ok,
                1,
            ))
            .unwrap_err();
        assert!(matches!(err, PlotError::TooLong { .. }), "{err}");
    }
}
