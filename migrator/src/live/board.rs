//! What the pipeline tells the live view while it runs: the steps as they
//! begin and end, the current step's progress, notes and warnings, where the
//! record points, the feeder to watch and, at the end, the verdict. The
//! pipeline writes (a short lock, no I/O); the view reads a copy on its own
//! thread. Bounded: the steps are few and only the last notes are kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::report::{StepOutcome, StepRecord};

/// The steps of a cutover in order, shown as pending before they start
/// (a rollback is added when one happens).
pub fn planned() -> impl Iterator<Item = &'static str> {
    crate::faults::spec::STEPS
        .iter()
        .copied()
        .filter(|s| *s != "rollback")
}

/// Notes kept for the view (the newest).
const NOTES: usize = 64;
/// Lines kept to print once the view has closed (a run prints a few dozen).
const LINES: usize = 2000;

/// One step as the view shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    Pending,
    Running {
        since: Instant,
    },
    Done {
        outcome: StepOutcome,
        took: Duration,
    },
}

/// The state shared by the pipeline and the view.
#[derive(Debug, Clone)]
pub struct BoardState {
    pub title: String,
    pub steps: Vec<(String, StepState)>,
    /// The current step's latest progress line.
    pub progress: Option<String>,
    /// Where traffic goes: the record and its target, as the steps learn it.
    pub target: String,
    pub notes: VecDeque<String>,
    /// Set when the verdict step ends: passed, and its line.
    pub verdict: Option<(bool, String)>,
    /// Set once the user asked to stop (`q`, Ctrl-C).
    pub stopping: bool,
    /// Every line a run without the view would have printed, in order, to
    /// print once the terminal is back (bounded: the oldest are dropped).
    pub lines: VecDeque<String>,
    pub feeder: Option<feeder::Watch>,
}

/// A cloneable handle on the shared state.
#[derive(Debug, Clone)]
pub struct Board(Arc<Mutex<BoardState>>);

impl Board {
    pub fn new(title: impl Into<String>) -> Board {
        Board(Arc::new(Mutex::new(BoardState {
            title: title.into(),
            steps: planned()
                .map(|s| (s.to_string(), StepState::Pending))
                .collect(),
            progress: None,
            target: String::new(),
            notes: VecDeque::new(),
            verdict: None,
            stopping: false,
            lines: VecDeque::new(),
            feeder: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // A panic while holding the lock leaves plain data: still readable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy to draw from.
    pub fn state(&self) -> BoardState {
        self.lock().clone()
    }

    pub fn begin(&self, name: &str) {
        let mut s = self.lock();
        s.progress = None;
        let state = StepState::Running {
            since: Instant::now(),
        };
        match s
            .steps
            .iter_mut()
            .find(|(n, st)| n == name && *st == StepState::Pending)
        {
            Some(step) => step.1 = state,
            None => s.steps.push((name.to_string(), state)),
        }
    }

    pub fn end(&self, rec: &StepRecord) {
        let mut s = self.lock();
        s.progress = None;
        let done = StepState::Done {
            outcome: rec.outcome,
            took: Duration::from_millis(rec.duration_ms),
        };
        let running = s
            .steps
            .iter_mut()
            .find(|(n, st)| *n == rec.name && matches!(st, StepState::Running { .. }));
        match running {
            Some(step) => step.1 = done,
            None => s.steps.push((rec.name.clone(), done)),
        }
        if rec.name == "verdict" {
            let line = rec.detail.clone().unwrap_or_default();
            s.verdict = Some((rec.outcome == StepOutcome::Ok, line));
        }
    }

    pub fn progress(&self, line: String) {
        self.lock().progress = Some(line);
    }

    pub fn note(&self, line: impl Into<String>) {
        let mut s = self.lock();
        if s.notes.len() == NOTES {
            s.notes.pop_front();
        }
        s.notes.push_back(line.into());
    }

    /// A line the run would have printed (kept for after the view).
    pub fn line(&self, line: impl Into<String>) {
        let mut s = self.lock();
        if s.lines.len() == LINES {
            s.lines.pop_front();
        }
        s.lines.push_back(line.into());
    }

    pub fn target(&self, target: impl Into<String>) {
        self.lock().target = target.into();
    }

    pub fn watch(&self, feeder: feeder::Watch) {
        self.lock().feeder = Some(feeder);
    }

    pub fn stopping(&self) {
        self.lock().stopping = true;
    }

    /// The kept lines, emptied.
    pub fn take_lines(&self) -> Vec<String> {
        self.lock().lines.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, outcome: StepOutcome) -> StepRecord {
        StepRecord {
            name: name.into(),
            started_at: String::new(),
            started_ns: 1,
            duration_ms: 20,
            outcome,
            detail: Some("passed".into()),
        }
    }

    #[test]
    fn steps_move_from_pending_to_running_to_done_and_extra_ones_are_added() {
        let b = Board::new("t");
        b.begin("preflight");
        assert!(matches!(b.state().steps[0].1, StepState::Running { .. }));
        b.end(&record("preflight", StepOutcome::Ok));
        b.begin("rollback");
        b.end(&record("rollback", StepOutcome::Ok));
        b.begin("verdict");
        b.end(&record("verdict", StepOutcome::Failed));
        let s = b.state();
        assert!(matches!(
            s.steps[0].1,
            StepState::Done {
                outcome: StepOutcome::Ok,
                ..
            }
        ));
        assert_eq!(s.steps.last().map(|x| x.0.as_str()), Some("rollback"));
        assert_eq!(s.verdict, Some((false, "passed".to_string())));
    }

    #[test]
    fn notes_and_lines_are_bounded() {
        let b = Board::new("t");
        for i in 0..(LINES + 10) {
            b.note(format!("n{i}"));
            b.line(format!("l{i}"));
        }
        let s = b.state();
        assert_eq!(s.notes.len(), NOTES);
        assert_eq!(s.lines.len(), LINES);
        assert_eq!(s.lines.front().map(String::as_str), Some("l10"));
    }
}
