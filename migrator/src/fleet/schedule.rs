//! The batch scheduler: which hosts go together, on which hold-over, after
//! which jittered delay, and when the fleet stops.
//!
//! Hosts go in batches of at most `batch`, each host on a free hold-over;
//! the next batch starts when the whole batch has ended. Within a batch each
//! host waits its own delay, drawn from a seed (splitmix64 of the seed and
//! the host's index), so not every host of a batch is emptied at the same
//! instant and a dry run shows exactly the delays a real run will use.
//! A hold-over left carrying a rolled-back host's service is never handed
//! out again, so later batches may be smaller. More failed hosts than
//! `max_failed_hosts` stop the fleet: no host starts after that, the ones
//! already moving finish (their own runs keep the service up).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;

/// The delay host `index` waits inside its batch: uniform in `0..=max`.
pub fn jitter(seed: u64, index: usize, max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    let z = mix(seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    Duration::from_millis(z % max_ms.saturating_add(1))
}

/// splitmix64's finalizer: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for a run not given one (`--seed`): from the clock and the pid.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    mix(t as u64 ^ u64::from(std::process::id()).rotate_left(32))
}

/// How a host's maintenance ended, as the scheduler needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEnd {
    /// Maintained, back on its host, hold-over released.
    Done,
    /// Failed, the service on its host (never moved, or moved back): the
    /// hold-over is free again.
    FailedOnHost,
    /// Failed, the service left on its hold-over: that hold-over is kept.
    FailedOnHoldover,
    /// Failed with the service's place unknown (a run left both sides
    /// running): the hold-over is kept and the fleet stops for a person.
    Stuck,
}

impl HostEnd {
    fn failed(self) -> bool {
        self != HostEnd::Done
    }
}

/// The scheduler's state: pure, no clock, no I/O.
#[derive(Debug)]
pub struct Scheduler {
    hosts: usize,
    next: usize,
    batch: usize,
    free: VecDeque<usize>,
    kept: Vec<usize>,
    failed: usize,
    max_failed: Option<usize>,
    stopped: Option<String>,
    /// The batches handed out so far (host indices).
    pub batches: Vec<Vec<usize>>,
}

impl Scheduler {
    pub fn new(hosts: usize, holdovers: usize, batch: usize, max_failed: Option<usize>) -> Self {
        Scheduler {
            hosts,
            next: 0,
            batch: batch.max(1),
            free: (0..holdovers).collect(),
            kept: Vec::new(),
            failed: 0,
            max_failed,
            stopped: None,
            batches: Vec::new(),
        }
    }

    /// The batches a run makes when no hold-over is lost (the dry run's).
    pub fn planned(hosts: usize, holdovers: usize, batch: usize) -> Vec<Vec<(usize, usize)>> {
        let batch = batch.clamp(1, holdovers.max(1));
        (0..hosts)
            .collect::<Vec<_>>()
            .chunks(batch)
            .map(|c| c.iter().enumerate().map(|(i, h)| (*h, i)).collect())
            .collect()
    }

    /// The next batch: `(host, hold-over)` pairs; `None` when every host has
    /// had its turn or the fleet stopped.
    pub fn next_batch(&mut self) -> Option<Vec<(usize, usize)>> {
        if self.stopped.is_some() || self.next >= self.hosts {
            return None;
        }
        let size = self.batch.min(self.free.len()).min(self.hosts - self.next);
        if size == 0 {
            self.stopped = Some(format!(
                "no hold-over left ({} kept by rolled-back hosts)",
                self.kept.len()
            ));
            return None;
        }
        let pairs: Vec<(usize, usize)> = (0..size)
            .filter_map(|i| self.free.pop_front().map(|o| (self.next + i, o)))
            .collect();
        self.next += pairs.len();
        self.batches.push(pairs.iter().map(|p| p.0).collect());
        Some(pairs)
    }

    /// Whether a host of the current batch may still start (the fleet has
    /// not stopped while it waited for its jitter).
    pub fn may_start(&self) -> bool {
        self.stopped.is_none()
    }

    /// Records how a host ended; may stop the fleet.
    pub fn ended(&mut self, holdover: usize, end: HostEnd) {
        match end {
            HostEnd::Done | HostEnd::FailedOnHost => self.free.push_back(holdover),
            HostEnd::FailedOnHoldover | HostEnd::Stuck => self.kept.push(holdover),
        }
        if end.failed() {
            self.failed += 1;
        }
        if self.stopped.is_some() {
            return;
        }
        if end == HostEnd::Stuck {
            self.stopped = Some("a host's service was left in an unknown place".into());
        } else if let Some(max) = self.max_failed.filter(|m| self.failed > *m) {
            self.stopped = Some(format!(
                "failed hosts: {}, more than fleet.max_failed_hosts = {max}",
                self.failed
            ));
        }
    }

    /// Stops the fleet (Ctrl-C): no host starts after this.
    pub fn stop(&mut self, why: &str) {
        self.stopped.get_or_insert_with(|| why.to_string());
    }

    /// Why the fleet stopped early, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Hosts that never got their turn.
    pub fn not_started(&self) -> std::ops::Range<usize> {
        self.next..self.hosts
    }

    pub fn kept(&self) -> &[usize] {
        &self.kept
    }
}

/// What a host's turn is given: its index, its hold-over's, its batch's.
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    pub host: usize,
    pub holdover: usize,
    pub batch: usize,
    pub delay: Duration,
}

/// What the fleet does at each moment [`drive`] reaches.
pub trait Hooks {
    /// Batch `number` (1-based) starts with these hosts.
    fn batch(&self, number: usize, hosts: &[usize]);
    /// One host's whole turn.
    fn work(&self, turn: Turn) -> impl Future<Output = HostEnd>;
    /// A host whose delay ended after the fleet stopped: it never starts.
    fn skipped(&self, turn: Turn);
    /// The fleet stopped early (said once).
    fn stopped(&self, why: &str);
}

/// Runs the fleet: batch after batch, each host after its jitter. A host
/// whose delay ends after the fleet stopped does not start.
pub async fn drive(
    sched: Arc<Mutex<Scheduler>>,
    seed: u64,
    max_jitter: Duration,
    hooks: &impl Hooks,
) {
    let next = |s: &Arc<Mutex<Scheduler>>| s.lock().map(|mut s| s.next_batch()).ok().flatten();
    let said = std::cell::Cell::new(false);
    let said = &said;
    let mut number = 0;
    while let Some(pairs) = next(&sched) {
        number += 1;
        let hosts: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        hooks.batch(number, &hosts);
        let turns = pairs.into_iter().map(|(host, holdover)| {
            let turn = Turn {
                host,
                holdover,
                batch: number,
                delay: jitter(seed, host, max_jitter),
            };
            let sched = sched.clone();
            async move {
                tokio::time::sleep(turn.delay).await;
                let go = sched.lock().map(|s| s.may_start()).unwrap_or(false);
                if !go {
                    hooks.skipped(turn);
                    // Never moved: its hold-over is free, and it is no failure.
                    if let Ok(mut s) = sched.lock() {
                        s.free.push_back(turn.holdover);
                    }
                    return;
                }
                let end = hooks.work(turn).await;
                let stopped = sched.lock().ok().and_then(|mut s| {
                    let before = s.stopped.is_some();
                    s.ended(turn.holdover, end);
                    s.stopped.clone().filter(|_| !before)
                });
                if let Some(why) = stopped {
                    said.set(true);
                    hooks.stopped(&why);
                }
            }
        });
        join_all(turns).await;
    }
    let stopped = sched.lock().ok().and_then(|s| s.stopped.clone());
    if let (Some(why), false) = (stopped, said.get()) {
        hooks.stopped(&why);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn jitter_is_replayable_and_bounded() {
        let max = Duration::from_secs(30);
        for i in 0..100 {
            assert!(jitter(7, i, max) <= max);
            assert_eq!(jitter(7, i, max), jitter(7, i, max));
        }
        let a: Vec<_> = (0..10).map(|i| jitter(1, i, max)).collect();
        let b: Vec<_> = (0..10).map(|i| jitter(2, i, max)).collect();
        assert_ne!(a, b);
        assert_eq!(jitter(1, 3, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn batches_take_free_holdovers_and_a_kept_one_is_not_reused() {
        let mut s = Scheduler::new(5, 2, 2, None);
        assert_eq!(s.next_batch().unwrap(), vec![(0, 0), (1, 1)]);
        s.ended(0, HostEnd::FailedOnHoldover);
        s.ended(1, HostEnd::Done);
        // Only hold-over 1 is left: batches of one from now on.
        assert_eq!(s.next_batch().unwrap(), vec![(2, 1)]);
        s.ended(1, HostEnd::FailedOnHost);
        assert_eq!(s.next_batch().unwrap(), vec![(3, 1)]);
        s.ended(1, HostEnd::FailedOnHoldover);
        assert_eq!(s.next_batch(), None);
        assert!(
            s.stopped().unwrap().contains("no hold-over left"),
            "{:?}",
            s.stopped()
        );
        assert_eq!(s.not_started(), 4..5);
        assert_eq!(s.kept(), &[0, 1]);
    }

    #[test]
    fn more_failures_than_allowed_stop_the_fleet() {
        let mut s = Scheduler::new(4, 2, 2, Some(0));
        s.next_batch().unwrap();
        s.ended(1, HostEnd::Done);
        assert!(s.may_start());
        s.ended(0, HostEnd::FailedOnHoldover);
        assert!(!s.may_start());
        assert!(s.stopped().unwrap().contains("max_failed_hosts = 0"));
        assert_eq!(s.next_batch(), None);
        let mut s = Scheduler::new(4, 2, 2, None);
        s.next_batch().unwrap();
        s.ended(0, HostEnd::Stuck);
        assert!(s.stopped().unwrap().contains("unknown place"));
    }

    #[test]
    fn planned_batches_are_chunks() {
        assert_eq!(
            Scheduler::planned(3, 2, 2),
            vec![vec![(0, 0), (1, 1)], vec![(2, 0)]]
        );
    }

    /// Hooks that record what happened; `end` says how each host ends
    /// and each turn takes `takes`.
    #[derive(Default)]
    struct Record {
        takes: Duration,
        end: Option<HostEnd>,
        started: Mutex<Vec<(usize, usize, Duration)>>,
        skipped: Mutex<Vec<usize>>,
        batches: Mutex<Vec<Vec<usize>>>,
        stops: Mutex<Vec<String>>,
    }

    impl Hooks for (Instant, Record) {
        fn batch(&self, _: usize, hosts: &[usize]) {
            self.1.batches.lock().unwrap().push(hosts.to_vec());
        }
        async fn work(&self, turn: Turn) -> HostEnd {
            self.1
                .started
                .lock()
                .unwrap()
                .push((turn.host, turn.batch, self.0.elapsed()));
            tokio::time::sleep(self.1.takes).await;
            self.1.end.unwrap_or(HostEnd::Done)
        }
        fn skipped(&self, turn: Turn) {
            self.1.skipped.lock().unwrap().push(turn.host);
        }
        fn stopped(&self, why: &str) {
            self.1.stops.lock().unwrap().push(why.to_string());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn batches_wait_for_each_other_and_hosts_for_their_jitter() {
        let sched = Arc::new(Mutex::new(Scheduler::new(4, 2, 2, None)));
        let max = Duration::from_secs(10);
        let hooks = (
            Instant::now(),
            Record {
                takes: Duration::from_secs(60),
                ..Record::default()
            },
        );
        drive(sched.clone(), 42, max, &hooks).await;
        let started = hooks.1.started.lock().unwrap().clone();
        assert_eq!(started.len(), 4);
        // Batch 2 starts once batch 1's later host has finished.
        let second = Duration::from_secs(60) + jitter(42, 0, max).max(jitter(42, 1, max));
        for (host, batch, at) in started {
            let batch_start = if batch == 1 { Duration::ZERO } else { second };
            assert_eq!(at, batch_start + jitter(42, host, max), "host {host}");
        }
        assert_eq!(
            *hooks.1.batches.lock().unwrap(),
            vec![vec![0, 1], vec![2, 3]]
        );
        assert!(hooks.1.stops.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_waiting_for_its_jitter_does_not_start_once_the_fleet_stopped() {
        let sched = Arc::new(Mutex::new(Scheduler::new(3, 2, 2, Some(0))));
        let max = Duration::from_secs(10);
        // Host 0 starts (and fails) well before host 1's delay ends.
        let seed = (0..u64::MAX)
            .find(|s| {
                jitter(*s, 0, max) < Duration::from_secs(1)
                    && jitter(*s, 1, max) > Duration::from_secs(5)
            })
            .unwrap();
        let hooks = (
            Instant::now(),
            Record {
                end: Some(HostEnd::FailedOnHoldover),
                ..Record::default()
            },
        );
        drive(sched.clone(), seed, max, &hooks).await;
        let started: Vec<usize> = hooks
            .1
            .started
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(started, vec![0]);
        assert_eq!(*hooks.1.skipped.lock().unwrap(), vec![1]);
        assert_eq!(hooks.1.stops.lock().unwrap().len(), 1);
        let s = sched.lock().unwrap();
        assert_eq!(s.not_started(), 2..3);
        assert_eq!(s.kept(), &[0]);
    }
}
