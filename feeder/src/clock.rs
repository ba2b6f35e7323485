//! One time base for the whole run: a monotonic clock anchored to the Unix
//! epoch once, so due times, completion times and the ack log agree and never
//! jump with wall-clock adjustments.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    t0: Instant,
    t0_unix_ns: u64,
}

impl Clock {
    pub fn start() -> Self {
        let t0_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock {
            t0: Instant::now(),
            t0_unix_ns,
        }
    }

    /// The instant the schedule starts.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    pub fn t0_unix_ns(&self) -> u64 {
        self.t0_unix_ns
    }

    /// Unix ns of an instant of this run.
    pub fn unix_ns(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.t0);
        self.t0_unix_ns
            .saturating_add(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn now_ns(&self) -> u64 {
        self.unix_ns(Instant::now())
    }

    /// Time since the start of the schedule.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }
}
