//! The open-loop schedule: request `i` is due at `t0 + i / rate`, whatever
//! happened to earlier ones.
//!
//! Sleeping once per request is too coarse above ~1,000/s (timer resolution
//! is a millisecond), so each wake-up releases every slot that is due by
//! then; a slot released late keeps its due time, so the lateness shows up in
//! the latency instead of vanishing (no coordinated omission).

use std::time::Duration;

/// The schedule of a run, independent of any clock so it can be tested exactly.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
    /// Number of slots in the run; `None` until stopped.
    limit: Option<u64>,
}

impl Schedule {
    /// `rate` must be finite and > 0 (validated by the options).
    pub fn new(rate: f64, duration: Option<Duration>) -> Self {
        let limit = duration.map(|d| {
            // Slots i with i / rate < d. The epsilon keeps 3 s × 200/s at 600, not 601.
            let n = (d.as_secs_f64() * rate - 1e-9).ceil();
            if n <= 0.0 {
                0
            } else {
                n as u64
            }
        });
        Schedule { rate, limit }
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// When slot `i` is due, relative to t0.
    pub fn due(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// How many slots are due by `elapsed` (slots `0..n`), capped at the limit.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let n = (elapsed.as_secs_f64() * self.rate).floor();
        let n = if n.is_finite() && n >= 0.0 {
            (n as u64).saturating_add(1)
        } else {
            0
        };
        match self.limit {
            Some(l) => n.min(l),
            None => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_count_is_rate_times_duration() {
        assert_eq!(
            Schedule::new(200.0, Some(Duration::from_secs(3))).limit(),
            Some(600)
        );
        assert_eq!(
            Schedule::new(0.5, Some(Duration::from_secs(3))).limit(),
            Some(2)
        );
        assert_eq!(
            Schedule::new(10_000.0, Some(Duration::from_millis(1))).limit(),
            Some(10)
        );
    }

    #[test]
    fn due_by_releases_everything_due_and_stops_at_the_limit() {
        let s = Schedule::new(1000.0, Some(Duration::from_secs(1)));
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(2500)), 3);
        assert_eq!(s.due_by(Duration::from_secs(5)), 1000);
        assert_eq!(s.due(500), Duration::from_millis(500));
    }
}
