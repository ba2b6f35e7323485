//! What a person sees while a run goes: a line when a step starts and ends,
//! at most one progress line per second while it waits, warnings and notes.

use std::io::Write;
use std::time::{Duration, Instant};

use handover_cli::{secs, Style};

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

/// Prints steps as they start and end, and their progress lines, on stdout.
pub struct Printer {
    pub style: Style,
    last_progress: Option<Instant>,
}

impl Printer {
    pub fn new(style: Style) -> Printer {
        Printer {
            style,
            last_progress: None,
        }
    }

    pub fn line(&self, s: &str) {
        let label = label();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{label}{s}");
        let _ = out.flush();
    }

    pub fn begin(&mut self, name: &str) {
        self.last_progress = Some(Instant::now());
        self.line(&format!(
            "{} {}",
            self.style.dim("▶"),
            self.style.heading(name)
        ));
    }

    pub fn end(&self, rec: &StepRecord) {
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

    /// A progress line, at most once per [`PROGRESS_EVERY`].
    pub fn progress(&mut self, f: impl FnOnce() -> String) {
        let due = self
            .last_progress
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if due {
            self.last_progress = Some(Instant::now());
            self.line(&format!("  {}", self.style.dim(f())));
        }
    }

    /// A fault the nemesis fired (or could not).
    pub fn fault(&self, e: &crate::faults::FaultEvent) {
        let mark = if e.injected {
            self.style.bad("⚡ fault")
        } else {
            self.style.warn("⚡ fault")
        };
        self.line(&format!("  {mark} {} at {}: {}", e.fault, e.at, e.detail));
    }

    pub fn warn(&self, s: &str) {
        self.line(&format!("  {} {s}", self.style.warn("warning:")));
    }

    pub fn note(&self, s: &str) {
        self.line(&format!("  {s}"));
    }
}
