//! The pure aggregator: every record in, counts, histograms, per-second
//! windows, instance events and the final report out. No I/O, no clocks; the
//! caller passes times in, so every behaviour is unit-testable.

use crate::handover::{Event, InstanceTracker};
use crate::histogram::{self, Hist};
use crate::record::Record;
use handover_contract::{FeederReport, Outcome, RateStats};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;

/// How long the old instance must be silent before an overlap counts as over.
pub const SETTLE_NS: u64 = 2_000_000_000;

/// One second of the run, as printed on the progress line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Second {
    /// Seconds since the start (1 for the first full second).
    pub index: u64,
    pub sent: u64,
    pub ok: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    pub missed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub in_flight: u64,
    pub by_instance: BTreeMap<String, u64>,
}

/// A mean with its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// Number of samples behind it.
    pub n: u64,
}

/// Welford's online mean and variance: constant memory at any duration.
#[derive(Debug, Clone, Copy, Default)]
struct Running {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn stddev(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }

    /// Student's t interval of the mean (95 %).
    fn interval(&self) -> Option<Interval> {
        if self.n < 2 {
            return None;
        }
        let t = StudentsT::new(0.0, 1.0, (self.n - 1) as f64)
            .ok()?
            .inverse_cdf(0.975);
        let half = t * self.stddev() / (self.n as f64).sqrt();
        Some(Interval {
            mean: self.mean,
            low: (self.mean - half).max(0.0),
            high: self.mean + half,
            n: self.n,
        })
    }
}

/// Everything known about the run so far.
#[derive(Debug)]
pub struct Aggregate {
    pub ok: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    latency: Hist,
    service: Hist,
    pub by_instance: BTreeMap<String, u64>,
    pub last_instance: Option<String>,
    pub last_ok_ns: Option<u64>,
    max_gap_ns: u64,
    /// The run's due-time window, for gaps at its start and end.
    first_due_ns: Option<u64>,
    last_due_ns: u64,
    first_ok_ns: Option<u64>,
    /// Longest wait between due and sent.
    queued_max_ns: u64,
    tracker: InstanceTracker,
    events: Vec<Event>,
    // The current second.
    sec_hist: Hist,
    sec_ok: u64,
    sec_rejected: u64,
    sec_indeterminate: u64,
    sec_by_instance: BTreeMap<String, u64>,
    sec_index: u64,
    sec_sent_before: u64,
    sec_missed_before: u64,
    /// When the previous second was closed (or the run started).
    sec_started_ns: Option<u64>,
    rate: Running,
    steady_p99: Running,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self::new(SETTLE_NS)
    }
}

impl Aggregate {
    /// Sets when the first second starts, so its rate is over the real span.
    pub fn start_at(&mut self, t0_ns: u64) {
        self.sec_started_ns = Some(t0_ns);
    }

    pub fn new(settle_ns: u64) -> Self {
        Aggregate {
            ok: 0,
            rejected: 0,
            indeterminate: 0,
            latency: histogram::new(),
            service: histogram::new(),
            by_instance: BTreeMap::new(),
            last_instance: None,
            last_ok_ns: None,
            max_gap_ns: 0,
            first_due_ns: None,
            last_due_ns: 0,
            first_ok_ns: None,
            queued_max_ns: 0,
            tracker: InstanceTracker::new(settle_ns),
            events: Vec::new(),
            sec_hist: histogram::new(),
            sec_ok: 0,
            sec_rejected: 0,
            sec_indeterminate: 0,
            sec_by_instance: BTreeMap::new(),
            sec_index: 0,
            sec_sent_before: 0,
            sec_missed_before: 0,
            sec_started_ns: None,
            rate: Running::default(),
            steady_p99: Running::default(),
        }
    }

    /// Adds one finished request.
    pub fn record(&mut self, r: &Record) {
        let latency = r.latency_us();
        histogram::record(&mut self.latency, latency);
        histogram::record(&mut self.service, r.service_us());
        histogram::record(&mut self.sec_hist, latency);
        self.first_due_ns = Some(self.first_due_ns.map_or(r.due_ns, |d| d.min(r.due_ns)));
        self.last_due_ns = self.last_due_ns.max(r.due_ns);
        self.queued_max_ns = self.queued_max_ns.max(r.sent_ns.saturating_sub(r.due_ns));
        match r.outcome() {
            Outcome::Ok => {
                self.ok += 1;
                self.sec_ok += 1;
                self.first_ok_ns = Some(self.first_ok_ns.map_or(r.done_ns, |t| t.min(r.done_ns)));
                match self.last_ok_ns {
                    Some(prev) if r.done_ns > prev => {
                        self.max_gap_ns = self.max_gap_ns.max(r.done_ns - prev);
                        self.last_ok_ns = Some(r.done_ns);
                    }
                    Some(_) => {}
                    None => self.last_ok_ns = Some(r.done_ns),
                }
            }
            Outcome::Rejected => {
                self.rejected += 1;
                self.sec_rejected += 1;
            }
            Outcome::Indeterminate => {
                self.indeterminate += 1;
                self.sec_indeterminate += 1;
            }
        }
        if let Some(inst) = &r.instance {
            bump(&mut self.by_instance, inst);
            bump(&mut self.sec_by_instance, inst);
            if self.last_instance.as_deref() != Some(inst.as_str()) {
                self.last_instance = Some(inst.clone());
            }
        }
        self.tracker
            .observe(r.done_ns, r.instance.as_deref(), latency, &mut self.events);
    }

    /// The longest time without a successful reply over the run's due-time
    /// window: between two successes, from the first due time to the first
    /// success, and from the last success to the last due time — so an
    /// outage at the start or the end of the run is downtime too.
    pub fn max_gap_ns(&self) -> u64 {
        let Some(first_due) = self.first_due_ns else {
            return 0;
        };
        match (self.first_ok_ns, self.last_ok_ns) {
            (Some(first_ok), Some(last_ok)) => self
                .max_gap_ns
                .max(first_ok.saturating_sub(first_due))
                .max(self.last_due_ns.saturating_sub(last_ok)),
            // Nothing succeeded: the whole window was down.
            _ => self.last_due_ns.saturating_sub(first_due),
        }
    }

    /// The run's first instance change so far, if any.
    pub fn handover(&self) -> Option<handover_contract::Handover> {
        self.tracker.handover()
    }

    /// Replies so far.
    pub fn done(&self) -> u64 {
        self.ok + self.rejected + self.indeterminate
    }

    /// Closes the current second. `sent` and `missed` are the pacer's totals
    /// so far; `full` says whether the second was a whole one (the last one
    /// of a run is usually not, and would skew the rate statistics).
    pub fn close_second(
        &mut self,
        now_ns: u64,
        sent: u64,
        missed: u64,
        in_flight: u64,
        full: bool,
    ) -> Second {
        self.tracker.settle(now_ns, &mut self.events);
        self.sec_index += 1;
        let sec = Second {
            index: self.sec_index,
            sent: sent.saturating_sub(self.sec_sent_before),
            ok: self.sec_ok,
            rejected: self.sec_rejected,
            indeterminate: self.sec_indeterminate,
            missed: missed.saturating_sub(self.sec_missed_before),
            p50_ms: quantile_ms(&self.sec_hist, 0.5),
            p99_ms: quantile_ms(&self.sec_hist, 0.99),
            in_flight,
            by_instance: std::mem::take(&mut self.sec_by_instance),
        };
        // A late tick makes a long second: the rate is over the real span.
        let span_s = self
            .sec_started_ns
            .map(|t| now_ns.saturating_sub(t) as f64 / 1e9)
            .filter(|s| *s > 0.0)
            .unwrap_or(1.0);
        self.sec_started_ns = Some(now_ns);
        if full {
            self.rate.push(sec.sent as f64 / span_s);
            if !self.sec_hist.is_empty() {
                self.steady_p99.push(sec.p99_ms);
            }
        }
        self.sec_sent_before = sent;
        self.sec_missed_before = missed;
        self.sec_ok = 0;
        self.sec_rejected = 0;
        self.sec_indeterminate = 0;
        self.sec_hist.reset();
        sec
    }

    /// Lets an overlap close when the old instance has gone quiet, even when
    /// no replies arrive.
    pub fn settle(&mut self, now_ns: u64) {
        self.tracker.settle(now_ns, &mut self.events);
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// 95 % interval of the per-second p99 over the run: the steady-state
    /// latency the handover window is compared with.
    pub fn steady_p99(&self) -> Option<Interval> {
        self.steady_p99.interval()
    }

    /// Ends the run: closes any open overlap (its event is queued).
    pub fn finish(&mut self) {
        self.tracker.finish(&mut self.events);
    }

    /// The report. `sent`/`missed` come from the pacer, `duration_ms` is the
    /// sending period.
    pub fn report(
        &self,
        target_rate: f64,
        sent: u64,
        missed: u64,
        duration_ms: u64,
    ) -> FeederReport {
        let secs = duration_ms as f64 / 1000.0;
        FeederReport {
            sent,
            ok: self.ok,
            rejected: self.rejected,
            indeterminate: self.indeterminate,
            missed,
            target_rate,
            achieved_rate: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
            duration_ms,
            latency_ms: histogram::summary(&self.latency),
            service_ms: histogram::summary(&self.service),
            max_gap_ms: self.max_gap_ns() as f64 / 1e6,
            queued_max_ms: self.queued_max_ns as f64 / 1e6,
            instances: self.by_instance.clone(),
            handover: self.tracker.handover(),
            rate_per_second: (self.rate.n > 0).then(|| RateStats {
                mean: self.rate.mean,
                stddev: self.rate.stddev(),
            }),
            latency_histogram: histogram::encode(&self.latency).ok(),
            service_histogram: histogram::encode(&self.service).ok(),
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else {
        map.insert(key.to_string(), 1);
    }
}

fn quantile_ms(h: &Hist, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn rec(seq: u64, due_ms: u64, done_ms: u64, status: Option<u16>, inst: Option<&str>) -> Record {
        Record {
            id: format!("r-{seq:010}"),
            due_ns: due_ms * MS,
            sent_ns: due_ms * MS,
            done_ns: done_ms * MS,
            outcome: handover_contract::Outcome::from_status(status),
            status,
            instance: inst.map(str::to_string),
            user_id: None,
            items_digest: None,
        }
    }

    #[test]
    fn outcomes_gap_and_instances() {
        let mut a = Aggregate::new(1_000 * MS);
        a.record(&rec(0, 0, 5, Some(201), Some("a")));
        a.record(&rec(1, 10, 15, Some(422), Some("a")));
        a.record(&rec(2, 20, 2_020, None, None));
        a.record(&rec(3, 30, 505, Some(503), Some("a")));
        a.record(&rec(4, 40, 1_045, Some(200), Some("b")));
        let r = a.report(100.0, 5, 1, 50);
        assert_eq!((r.ok, r.rejected, r.indeterminate), (2, 1, 2));
        assert_eq!(r.max_gap_ms, 1_040.0);
        assert_eq!(r.instances.get("a"), Some(&3));
        assert_eq!(r.instances.get("b"), Some(&1));
        assert_eq!(r.missed, 1);
        assert_eq!(r.achieved_rate, 100.0);
        assert!(r.latency_ms.max >= 1_999.0, "{:?}", r.latency_ms);
        assert!(r.handover.is_some());
        assert_eq!(a.last_instance.as_deref(), Some("b"));
    }

    /// Blind spot: an outage at the end of the run (B dies in its last
    /// seconds) or at its start was no gap, for lack of a success after it.
    #[test]
    fn an_outage_at_the_end_or_the_start_is_downtime() {
        let mut end = Aggregate::new(1_000 * MS);
        end.record(&rec(0, 0, 2, Some(201), Some("b")));
        end.record(&rec(1, 10, 12, Some(201), Some("b")));
        for i in 2..300 {
            end.record(&rec(i, i * 10, i * 10 + 2_000, None, None));
        }
        assert_eq!(end.report(100.0, 300, 0, 3_000).max_gap_ms, 2_990.0 - 12.0);
        let mut start = Aggregate::new(1_000 * MS);
        for i in 0..100 {
            start.record(&rec(i, i * 10, i * 10 + 2_000, None, None));
        }
        start.record(&rec(100, 1_000, 1_003, Some(201), Some("a")));
        assert_eq!(start.report(100.0, 101, 0, 1_000).max_gap_ms, 1_003.0);
        let mut never = Aggregate::new(1_000 * MS);
        never.record(&rec(0, 0, 5, Some(503), None));
        never.record(&rec(1, 500, 505, Some(503), None));
        assert_eq!(never.report(2.0, 2, 0, 500).max_gap_ms, 500.0);
    }

    #[test]
    fn the_longest_wait_inside_the_feeder_is_reported() {
        let mut a = Aggregate::new(1_000 * MS);
        let mut late = rec(0, 0, 900, Some(201), Some("a"));
        late.sent_ns = 700 * MS;
        a.record(&late);
        a.record(&rec(1, 10, 12, Some(201), Some("a")));
        assert_eq!(a.report(100.0, 2, 0, 20).queued_max_ms, 700.0);
    }

    #[test]
    fn seconds_are_deltas_and_feed_rate_stats() {
        let mut a = Aggregate::new(1_000 * MS);
        for i in 0..10 {
            a.record(&rec(i, i, i + 1, Some(201), Some("a")));
        }
        let s1 = a.close_second(1_000 * MS, 10, 0, 0, true);
        assert_eq!((s1.index, s1.sent, s1.ok), (1, 10, 10));
        assert_eq!(s1.by_instance.get("a"), Some(&10));
        assert!(s1.p99_ms >= 1.0);
        let s2 = a.close_second(2_000 * MS, 22, 3, 0, true);
        assert_eq!((s2.sent, s2.ok, s2.missed), (12, 0, 3));
        assert!(s2.by_instance.is_empty());
        let r = a.report(10.0, 22, 3, 2_000);
        let stats = r.rate_per_second.expect("rate stats");
        assert_eq!(stats.mean, 11.0);
        let expected = statrs::statistics::Statistics::std_dev([10.0, 12.0]);
        assert!((stats.stddev - expected).abs() < 1e-9);
    }

    #[test]
    fn steady_interval_brackets_the_mean() {
        let mut r = Running::default();
        for x in [1.0, 2.0, 3.0, 2.0, 1.0, 3.0] {
            r.push(x);
        }
        let i = r.interval().expect("interval");
        assert_eq!(i.mean, 2.0);
        assert!(i.low < 2.0 && i.high > 2.0 && i.low > 0.9);
        assert!(Running::default().interval().is_none());
    }
}
