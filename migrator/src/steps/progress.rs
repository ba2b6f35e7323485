//! What a person sees while a run goes: a line when a step starts and ends,
//! at most one progress line per second while it waits, warnings and notes.
//! With the live view ([`crate::live`]) the same facts go to its board too;
//! while the view has the screen, the lines are kept and printed after it.

use std::io::Write;
use std::time::{Duration, Instant};

use handover_cli::{secs, Style};

use crate::live::Board;
use crate::report::{StepOutcome, StepRecord};

tokio::task_local! {
    /// The name a fleet gives the run (its host): every line of the run
    /// starts with it, so several runs at once stay readable.
    pub static LABEL: String;
}

/// `[NAME] ` inside a labelled run, else nothing: what starts its lines.
pub fn label() -> String {
    LABEL.try_with(|l| format!("[{l}] ")).unwrap_or_default()
}

/// How often a waiting step prints its progress line.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Prints steps as they start and end, and their progress lines, on stdout
/// (or keeps them for after the live view), and tells the view's board.
#[derive(Clone)]
pub struct Printer {
    pub style: Style,
    last_progress: Option<Instant>,
    board: Option<Board>,
    /// False while the live view has the screen.
    print: bool,
}

impl Printer {
    pub fn new(style: Style) -> Printer {
        Printer {
            style,
            last_progress: None,
            board: None,
            print: true,
        }
    }

    /// A printer that also tells `board`; `on_screen`: the view has the
    /// terminal, so lines are kept for after it instead of printed.
    pub fn with_board(style: Style, board: Board, on_screen: bool) -> Printer {
        Printer {
            style,
            last_progress: None,
            board: Some(board),
            print: !on_screen,
        }
    }

    /// The live view's board, when there is one.
    pub fn board(&self) -> Option<&Board> {
        self.board.as_ref()
    }

    pub fn line(&self, s: &str) {
        if self.print {
            let label = label();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{label}{s}");
            let _ = out.flush();
        } else if let Some(b) = &self.board {
            b.line(s);
        }
    }

    /// Several lines at once (the summary), kept together.
    pub fn text(&self, text: &str) {
        for l in text.lines() {
            self.line(l);
        }
    }

    pub fn begin(&mut self, name: &str) {
        self.last_progress = Some(Instant::now());
        if let Some(b) = &self.board {
            b.begin(name);
        }
        self.line(&format!(
            "{} {}",
            self.style.dim("▶"),
            self.style.heading(name)
        ));
    }

    pub fn end(&self, rec: &StepRecord) {
        if let Some(b) = &self.board {
            b.end(rec);
        }
        let mark = match rec.outcome {
            StepOutcome::Ok => self.style.ok("✓"),
            StepOutcome::Failed => self.style.bad("✗"),
            StepOutcome::Skipped => self.style.dim("-"),
            StepOutcome::TimedOut => self.style.warn("⏱"),
        };
        let detail = rec.detail.as_deref().unwrap_or("");
        self.line(&format!(
            "{mark} {} {} {detail}",
            self.style.heading(&rec.name),
            self.style.dim(secs(Duration::from_millis(rec.duration_ms))),
        ));
    }

    /// A progress line, at most once per [`PROGRESS_EVERY`] (the view's
    /// board gets every one).
    pub fn progress(&mut self, f: impl FnOnce() -> String) {
        let due = self
            .last_progress
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if !due && self.board.is_none() {
            return;
        }
        let text = f();
        if due {
            self.last_progress = Some(Instant::now());
            self.line(&format!("  {}", self.style.dim(&text)));
        }
        if let Some(b) = &self.board {
            b.progress(text);
        }
    }

    /// A fault the nemesis fired (or could not).
    pub fn fault(&self, e: &crate::faults::FaultEvent) {
        let mark = if e.injected {
            self.style.bad("⚡ fault")
        } else {
            self.style.warn("⚡ fault")
        };
        self.to_board(&format!("⚡ fault {} at {}: {}", e.fault, e.at, e.detail));
        self.line(&format!("  {mark} {} at {}: {}", e.fault, e.at, e.detail));
    }

    pub fn warn(&self, s: &str) {
        self.to_board(&format!("warning: {s}"));
        self.line(&format!("  {} {s}", self.style.warn("warning:")));
    }

    pub fn note(&self, s: &str) {
        self.to_board(s);
        self.line(&format!("  {s}"));
    }

    /// A note of lesser weight (printed dim).
    pub fn note_dim(&self, s: &str) {
        self.to_board(s);
        self.line(&format!("  {}", self.style.dim(s)));
    }

    /// Where traffic goes now, for the view's title line.
    pub fn target(&self, s: String) {
        if let Some(b) = &self.board {
            b.target(s);
        }
    }

    fn to_board(&self, s: &str) {
        if let Some(b) = &self.board {
            b.note(s);
        }
    }
}
