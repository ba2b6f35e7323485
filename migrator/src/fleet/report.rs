//! The fleet report (`--report fleet.json`): a verdict for the fleet and
//! one per host, with each host's steps and the orders its two runs lost or
//! failed; and its summary for people.

use std::io::Write;
use std::path::Path;

use handover_cli::Style;
use serde::Serialize;

use super::host::Phase;
use crate::report::{MigrationReport, StepRecord};

/// The whole fleet.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub passed: bool,
    /// Why not, one line per failed host (named) and why the fleet stopped.
    pub reasons: Vec<String>,
    /// The jitter's seed (`--seed` replays the same delays).
    pub seed: u64,
    /// The batches as run, host names.
    pub batches: Vec<Vec<String>>,
    /// Why the fleet stopped before every host had its turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub hosts: Vec<HostReport>,
    pub started_at: String,
    pub finished_at: String,
}

/// One host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// The host's address.
    pub host: String,
    pub name: String,
    pub passed: bool,
    /// The hold-over it used (none if it never started).
    pub holdover: Option<String>,
    /// Where it ended: `done`, `on_holdover` (rolled back: the service stays
    /// there and the hold-over was not reused), `failed_on_host`, `stuck`,
    /// `skipped` (the fleet stopped first).
    pub state: Phase,
    /// Verify attempts made.
    pub attempts: u32,
    /// Acknowledged orders lost over its two runs (reconciles summed).
    pub lost: u64,
    /// Orders the clients saw fail (rejected or indeterminate) over its runs.
    pub failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the `[fleet.watch]` probes on its record saw, all fleet long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::WatchSummary>,
    /// `to_holdover`, `maintain`, `verify` (one per attempt), `back`, `release`.
    pub steps: Vec<StepRecord>,
    /// The two runs' own reports, as `migrator run` writes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<MigrationReport>,
}

impl HostReport {
    /// A host before its turn.
    pub fn new(address: &str, name: &str) -> HostReport {
        HostReport {
            host: address.to_string(),
            name: name.to_string(),
            passed: false,
            holdover: None,
            state: Phase::Waiting,
            attempts: 0,
            lost: 0,
            failed: 0,
            reason: None,
            watch: None,
            steps: Vec::new(),
            runs: Vec::new(),
        }
    }
}

/// The orders a run lost and the client saw fail.
pub fn orders(report: &MigrationReport) -> (u64, u64) {
    let lost = report.reconcile.as_ref().map_or(0, |r| r.lost);
    let failed = report
        .feeder
        .as_ref()
        .map_or(0, |f| f.rejected + f.indeterminate);
    (lost, failed)
}

impl FleetReport {
    /// Judges the fleet: every host passed (its probes too, when watched)
    /// and the fleet was not stopped.
    pub fn judge(&mut self) {
        self.reasons.clear();
        for h in &mut self.hosts {
            if let Some(w) = h.watch.as_ref().filter(|w| w.failed > 0) {
                let seen = format!(
                    "{} of {} watch probes failed (longest gap {:.0} ms): the service was not always up",
                    w.failed, w.sent, w.max_gap_ms
                );
                h.passed = false;
                h.reason = Some(match h.reason.take() {
                    Some(r) => format!("{r}; {seen}"),
                    None => seen,
                });
            }
        }
        for h in &self.hosts {
            if !h.passed {
                let why = h.reason.as_deref().unwrap_or("failed");
                self.reasons
                    .push(format!("host {} ({}): {why}", h.name, h.host));
            }
        }
        if let Some(s) = &self.stopped {
            self.reasons.insert(0, format!("fleet stopped: {s}"));
        }
        self.passed = self.reasons.is_empty();
    }

    /// The summary: a line per host, then the verdict.
    pub fn print(&self, out: &mut dyn Write, style: Style) -> std::io::Result<()> {
        writeln!(out)?;
        writeln!(out, "{}", style.heading("fleet"))?;
        for h in &self.hosts {
            let mark = if h.passed {
                style.ok("✓")
            } else {
                style.bad("✗")
            };
            writeln!(
                out,
                "  {mark} {:<12} {:<16} {:<15} hold-over {:<16} attempts {} lost {} failed {}",
                h.name,
                h.host,
                h.state.as_str(),
                h.holdover.as_deref().unwrap_or("-"),
                h.attempts,
                style.zero(h.lost),
                style.zero(h.failed),
            )?;
        }
        if self.passed {
            writeln!(out, "{}", style.banner_pass("FLEET PASSED"))?;
        } else {
            writeln!(out, "{}", style.banner_fail("FLEET FAILED"))?;
            for r in &self.reasons {
                writeln!(out, "  - {r}")?;
            }
        }
        Ok(())
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn host(name: &str, passed: bool, reason: Option<&str>) -> HostReport {
        HostReport {
            passed,
            holdover: Some("10.0.0.9".into()),
            state: if passed {
                Phase::Done
            } else {
                Phase::OnHoldover
            },
            attempts: 3,
            reason: reason.map(str::to_string),
            ..HostReport::new("10.0.0.1", name)
        }
    }

    #[test]
    fn the_verdict_names_each_failed_host_and_the_stop() {
        let mut r = FleetReport {
            passed: true,
            reasons: Vec::new(),
            seed: 1,
            batches: Vec::new(),
            stopped: Some("1 hosts failed".into()),
            hosts: vec![
                host("h1", true, None),
                host("h2", false, Some("verify failed 3 times")),
            ],
            started_at: String::new(),
            finished_at: String::new(),
        };
        r.judge();
        assert!(!r.passed);
        assert!(r.reasons[0].contains("fleet stopped"));
        assert!(r.reasons[1].contains("h2") && r.reasons[1].contains("verify failed"));
        let mut text = Vec::new();
        r.print(&mut text, Style::plain()).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("FLEET FAILED") && text.contains("on_holdover"),
            "{text}"
        );
        r.stopped = None;
        r.hosts.truncate(1);
        r.judge();
        assert!(r.passed && r.reasons.is_empty());
        // A probe that failed fails a host that was otherwise fine.
        r.hosts[0].watch = Some(super::super::watch::WatchSummary {
            sent: 100,
            ok: 98,
            failed: 2,
            max_gap_ms: 900.0,
        });
        r.judge();
        assert!(!r.passed && !r.hosts[0].passed);
        assert!(
            r.reasons[0].contains("2 of 100 watch probes failed"),
            "{:?}",
            r.reasons
        );
    }
}
