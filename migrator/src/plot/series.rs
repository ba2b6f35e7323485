//! The timeline as points to draw, shared by the SVG plot and the HTML
//! report: where the axis starts and ends, the cumulative stacks of replies
//! per instance (failures on top) and the p99 line, each in seconds since
//! the first thing drawn.

use super::timeline::{Bucket, Timeline, BUCKET_NS};
use crate::report::StepRecord;

/// A timeline turned into chart coordinates.
#[derive(Debug, Clone)]
pub struct Series {
    /// Unix ns of x = 0: the earliest reply or step.
    pub t0: u64,
    /// The x axis' end in seconds (a little past the last reply or step).
    pub x_max: f64,
    /// `stacks[i]` is the top of instance `i`'s area (instances in the
    /// timeline's order); `stacks[instances]` the top of the failures.
    /// Two points per bucket, a flat top over its width, like a bar.
    pub stacks: Vec<Vec<(f64, f64)>>,
    /// p99 latency (ms) per bucket that had replies, at the bucket's start.
    pub p99: Vec<(f64, f64)>,
    /// The highest stack (replies per 100 ms), at least 1.
    pub peak: f64,
}

impl Series {
    /// Every 100 ms bucket of `t`, and `steps` for the axis' extent.
    pub fn new(t: &Timeline, steps: &[StepRecord]) -> Series {
        Series::binned(t, steps, 1)
    }

    /// As [`Series::new`], `bin` buckets merged into one bar (their mean per
    /// 100 ms, the highest p99), so a long run draws as few points as asked.
    pub fn binned(t: &Timeline, steps: &[StepRecord], bin: u64) -> Series {
        let bin = bin.max(1);
        // The axis starts at the earliest thing drawn: a reply or a step.
        let first_reply = t.buckets.keys().next().map(|k| k * BUCKET_NS);
        let first_step = steps.iter().map(|s| s.started_ns).filter(|&n| n > 0).min();
        let t0 = match (first_reply, first_step) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        };
        let secs = |ns: u64| ns.saturating_sub(t0) as f64 / 1e9;
        let last_reply = t.buckets.keys().last().map(|k| (k + 1) * BUCKET_NS);
        let last_step = steps
            .iter()
            .map(|s| s.started_ns + s.duration_ms * 1_000_000)
            .max();
        let x_max = secs(last_reply.unwrap_or(0).max(last_step.unwrap_or(0))).max(1.0) * 1.02;

        let n = t.instances.len();
        let mut s = Series {
            t0,
            x_max,
            stacks: vec![Vec::with_capacity(t.buckets.len() * 2 / bin as usize + 2); n + 1],
            p99: Vec::with_capacity(t.buckets.len() / bin as usize + 1),
            peak: 1.0,
        };
        let mut prev_key: Option<u64> = None;
        let mut group: Vec<&Bucket> = Vec::with_capacity(bin as usize);
        let mut group_key = None;
        for (&key, b) in &t.buckets {
            let k = key / bin;
            if group_key.is_some_and(|g| g != k) {
                s.push_bin(group_key.unwrap_or(k), bin, &group, &mut prev_key, &secs, n);
                group.clear();
            }
            group_key = Some(k);
            group.push(b);
        }
        if let Some(k) = group_key {
            s.push_bin(k, bin, &group, &mut prev_key, &secs, n);
        }
        s
    }

    fn push_bin(
        &mut self,
        key: u64,
        bin: u64,
        group: &[&Bucket],
        prev_key: &mut Option<u64>,
        secs: &dyn Fn(u64) -> f64,
        n: usize,
    ) {
        let width = bin * BUCKET_NS;
        // Close gaps with zeros so an outage shows as a drop, not a ramp.
        if let Some(p) = *prev_key {
            if key > p + 1 {
                for stack in self.stacks.iter_mut() {
                    stack.push((secs((p + 1) * width), 0.0));
                    stack.push((secs(key * width), 0.0));
                }
            }
        }
        *prev_key = Some(key);
        let (x, x_end) = (secs(key * width), secs((key + 1) * width));
        let per = bin as f64;
        let mut sum = 0.0;
        for (i, stack) in self.stacks.iter_mut().enumerate().take(n) {
            let ok: u32 = group
                .iter()
                .map(|b| b.ok.get(i).copied().unwrap_or(0))
                .sum();
            sum += f64::from(ok) / per;
            stack.push((x, sum));
            stack.push((x_end, sum));
        }
        let failed: u32 = group.iter().map(|b| b.rejected + b.indeterminate).sum();
        sum += f64::from(failed) / per;
        self.stacks[n].push((x, sum));
        self.stacks[n].push((x_end, sum));
        self.peak = self.peak.max(sum);
        if let Some(p) = group.iter().filter_map(|b| b.p99_ms()).reduce(f64::max) {
            self.p99.push((x, p));
        }
    }

    /// Seconds since [`Series::t0`] of the Unix ns `ns`.
    pub fn secs(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.t0) as f64 / 1e9
    }
}
