//! One frame's worth of the live state, as plain data: what [`super::draw`]
//! renders. Built from the board, the window of samples and the feeder's
//! totals at one instant, so the drawing is a pure function of it.

use std::time::{Duration, Instant};

use feeder::view::window::Sample;
use feeder::view::{LoadView, Window};

use super::board::{BoardState, StepState};
use crate::report::StepOutcome;

/// A step as drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum StepView {
    Pending,
    Running(Duration),
    Done(StepOutcome, Duration),
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
        let load = live.map(|l| LoadView::of(l, window, now_ns));
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
