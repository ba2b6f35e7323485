//! The fleet's progress: one plain snapshot (every host's phase, hold-over,
//! verify attempts and order counts so far, the current batch) that the
//! metrics endpoint renders and a live view could draw; and the one line
//! per host event people read on stdout.
//!
//! The snapshot sits behind a std mutex held only to copy or change a few
//! fields, never across an await, so readers never slow the fleet down.

use std::io::Write;
use std::sync::{Arc, Mutex};

use handover_cli::Style;
use serde::Serialize;

use super::host::Phase;

/// One host as the fleet sees it now.
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    pub name: String,
    pub address: String,
    pub holdover: Option<String>,
    pub phase: Phase,
    pub attempts: u32,
    /// Acknowledged orders lost, over its runs so far.
    pub lost: u64,
    /// Orders the clients saw fail (rejected or indeterminate), so far.
    pub failed: u64,
}

/// The whole fleet now.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The batch being run (1-based; 0 before the first).
    pub batch: usize,
    pub seed: u64,
    /// Why the fleet stopped early, once it did.
    pub stopped: Option<String>,
    pub hosts: Vec<HostView>,
}

impl Snapshot {
    pub fn count(&self, f: impl Fn(Phase) -> bool) -> usize {
        self.hosts.iter().filter(|h| f(h.phase)).count()
    }
}

/// The shared progress and its printer.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Mutex<Snapshot>>,
    style: Style,
}

impl Progress {
    pub fn new(snapshot: Snapshot, style: Style) -> Progress {
        Progress {
            inner: Arc::new(Mutex::new(snapshot)),
            style,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        match self.inner.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Snapshot) -> T) -> T {
        match self.inner.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Changes host `i`'s view.
    pub fn update(&self, i: usize, f: impl FnOnce(&mut HostView)) {
        self.with(|s| {
            if let Some(h) = s.hosts.get_mut(i) {
                f(h);
            }
        });
    }

    /// Host `i` had an event (a step ended, or its turn began or ended)
    /// and is now in `phase`: the view changes and one line says so.
    pub fn event(&self, i: usize, phase: Phase, what: &str, ok: bool, detail: &str) {
        let name = self.with(|s| {
            s.hosts.get_mut(i).map(|h| {
                h.phase = phase;
                format!("{} ({})", h.name, h.address)
            })
        });
        let mark = if ok {
            self.style.ok("✓")
        } else {
            self.style.bad("✗")
        };
        self.line(&format!(
            "{} {} {mark} {} {detail}",
            self.style.dim("fleet:"),
            name.unwrap_or_default(),
            self.style.heading(what),
        ));
    }

    /// Batch `n` starts with these hosts.
    pub fn batch(&self, n: usize, names: &[String]) {
        self.with(|s| s.batch = n);
        self.line(&format!(
            "{} {} {}",
            self.style.dim("fleet:"),
            self.style.heading(format!("batch {n}")),
            names.join(", ")
        ));
    }

    /// The fleet stopped early.
    pub fn stopped(&self, why: &str) {
        let first = self.with(|s| {
            let first = s.stopped.is_none();
            s.stopped.get_or_insert_with(|| why.to_string());
            first
        });
        if first {
            self.line(&format!(
                "{} {} {why}: no new host starts, those in progress finish",
                self.style.dim("fleet:"),
                self.style.bad("stopping")
            ));
        }
    }

    pub fn line(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    }
}
