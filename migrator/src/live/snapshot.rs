//! One frame's worth of the live state, as plain data: what [`super::draw`]
//! renders. Built from the board, the window of samples and the feeder's
//! totals at one instant, so the drawing is a pure function of it.

use std::time::{Duration, Instant};

use super::board::{BoardState, StepState};
use super::window::{Sample, Window};
use crate::report::StepOutcome;

/// A step as drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum StepView {
    Pending,
    Running(Duration),
    Done(StepOutcome, Duration),
}

/// The load's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadView {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub missed: u64,
    pub in_flight: u64,
    /// Over the last whole second, from the due time.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Since the latest success, and the longest so far.
    pub gap_now_ms: f64,
    pub gap_max_ms: f64,
    /// How long both instances have answered (first new → last old), and
    /// whether both still do.
    pub overlap_ms: Option<f64>,
    pub both_answering: bool,
}

/// Everything one frame shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub title: String,
    pub elapsed: Duration,
    pub steps: Vec<(String, StepView)>,
    pub progress: Option<String>,
    pub target: String,
    pub load: Option<LoadView>,
    pub instances: Vec<String>,
    /// Oldest first, one per 100 ms.
    pub samples: Vec<Sample>,
    /// The newest notes, oldest first.
    pub notes: Vec<String>,
    pub verdict: Option<(bool, String)>,
    pub stopping: bool,
}

/// Samples that count as "now" for "both answering": the last second.
const RECENT: usize = 10;

impl Snapshot {
    /// The frame at `now` (and `now_ns`, the ack log's clock) of a run
    /// that started at `started`.
    pub fn of(
        board: &BoardState,
        window: &Window,
        live: Option<&feeder::Live>,
        started: Instant,
        now: Instant,
        now_ns: u64,
    ) -> Snapshot {
        let steps = board
            .steps
            .iter()
            .map(|(name, st)| {
                let view = match st {
                    StepState::Pending => StepView::Pending,
                    StepState::Running { since } => {
                        StepView::Running(now.saturating_duration_since(*since))
                    }
                    StepState::Done { outcome, took } => StepView::Done(*outcome, *took),
                };
                (name.clone(), view)
            })
            .collect();
        let recent = window.samples.iter().rev().take(RECENT);
        let answering = recent.fold(vec![false; window.instances.len()], |mut seen, s| {
            for (i, n) in s.ok.iter().enumerate() {
                seen[i] |= *n > 0;
            }
            seen
        });
        let load = live.map(|l| LoadView {
            sent: l.sent,
            ok: l.ok,
            failed: l.rejected + l.indeterminate,
            missed: l.missed,
            in_flight: l.in_flight,
            p50_ms: l.p50_us as f64 / 1000.0,
            p99_ms: l.p99_us as f64 / 1000.0,
            gap_now_ms: l
                .last_ok_ns
                .map(|t| now_ns.saturating_sub(t) as f64 / 1e6)
                .unwrap_or(0.0),
            gap_max_ms: l.max_gap_ns as f64 / 1e6,
            overlap_ms: match (l.first_new_ns, l.last_old_ns) {
                (Some(first), Some(last)) => Some(last.saturating_sub(first) as f64 / 1e6),
                _ => None,
            },
            both_answering: answering.iter().filter(|a| **a).count() >= 2,
        });
        Snapshot {
            title: board.title.clone(),
            elapsed: now.saturating_duration_since(started),
            steps,
            progress: board.progress.clone(),
            target: board.target.clone(),
            load,
            instances: window.instances.clone(),
            samples: window.samples.iter().cloned().collect(),
            notes: board.notes.iter().rev().take(3).rev().cloned().collect(),
            verdict: board.verdict.clone(),
            stopping: board.stopping,
        }
    }
}
