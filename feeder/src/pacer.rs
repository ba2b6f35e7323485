//! The open-loop schedule: request `i` is due at `t0 + i / rate`, whatever
//! happened to earlier ones.
//!
//! Sleeping once per request is too coarse above ~1,000/s (timer resolution
//! is a millisecond), so each wake-up releases every slot that is due by
//! then; a slot released late keeps its due time, so the lateness shows up in
//! the latency instead of vanishing (no coordinated omission).
//!
//! [`Schedule`] is the pure arithmetic; [`pace`] is the loop that follows it
//! on the run's clock, hands due slots to the workers and counts the ones
//! the in-flight cap refuses as missed.

use crate::clock::Clock;
use crate::live::Shared;
use crate::shard::Shard;
use crate::worker::{Slot, Workers};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The schedule of a run, independent of any clock so it can be tested exactly.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
    /// Number of slots in the run; `None` until stopped.
    limit: Option<u64>,
    /// Which of the slots this process sends.
    shard: Shard,
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
        Schedule {
            rate,
            limit,
            shard: Shard::WHOLE,
        }
    }

    /// Only `shard`'s slots of this schedule.
    pub fn with_shard(self, shard: Shard) -> Self {
        Schedule { shard, ..self }
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

/// Releases every due slot each wake-up; returns the sending period.
pub async fn pace(
    schedule: Schedule,
    clock: Clock,
    cap: u64,
    stop: CancellationToken,
    shared: Arc<Shared>,
    mut workers: Workers,
) -> Duration {
    let queue = workers.queue().clone();
    workers.grow_to(Workers::INITIAL);
    let mut next: u64 = schedule.shard.first();
    loop {
        let due = if stop.is_cancelled() {
            next
        } else {
            schedule.due_by(clock.elapsed())
        };
        let released = std::time::Instant::now();
        while next < due {
            if shared.in_flight.load(Ordering::Relaxed) >= cap {
                shared.missed.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.in_flight.fetch_add(1, Ordering::Relaxed);
                let due_ns = clock.t0_unix_ns().saturating_add(
                    u64::try_from(schedule.due(next).as_nanos()).unwrap_or(u64::MAX),
                );
                queue.push(Slot {
                    seq: next,
                    due_ns,
                    released,
                });
            }
            next = schedule.shard.after(next);
        }
        workers.keep_up();
        let done = schedule.limit().is_some_and(|l| next >= l);
        if done || stop.is_cancelled() {
            break;
        }
        let wake = tokio::time::Instant::from_std(clock.t0() + schedule.due(next));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.cancelled() => {}
        }
    }
    queue.close();
    // The workers hold the remaining senders: the collector ends when they do.
    drop(workers);
    let released = clock.elapsed();
    shared
        .sending_ended_ns
        .store(clock.now_ns().max(1), Ordering::Relaxed);
    match schedule.limit() {
        // Never shorter than the schedule asked for, longer if the pacer fell behind.
        Some(l) if next >= l => schedule.due(l).max(released),
        _ => released,
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
