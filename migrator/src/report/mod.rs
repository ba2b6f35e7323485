//! The migrator's report: JSON for machines (`--report`), a coloured summary
//! for people, and the verdict that decides the exit code.
//!
//! - this file: the report's shape (a stable interface) and step timing.
//! - [`verdict`]: the rules that pass or fail a run, each a reason with numbers.
//! - [`human`]: the summary people read.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use handover_contract::FeederReport;
use serde::{Deserialize, Serialize};

mod human;
mod verdict;

pub use human::print_human;
pub use verdict::{verdict, verdict_reconcile};

use crate::reconcile::ReconcileReport;

/// The whole run, as written by `--report`. Field names are a stable interface
/// (see DESIGN.md, "Command lines and reports").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MigrationReport {
    pub passed: bool,
    /// Why the verdict failed (empty when it passed).
    pub reasons: Vec<String>,
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub feeder: Option<FeederReport>,
    #[serde(default)]
    pub reconcile: Option<ReconcileReport>,
    /// Set when the plan names no store to read (`reconcile.kind = "none"`):
    /// why nothing was reconciled. The verdict then judges only failures and
    /// downtime, and the summary says "not reconciled".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreconciled: Option<String>,
    #[serde(default)]
    pub convergence: Option<Convergence>,
    /// Faults the nemesis fired, in order (`--fault`, `[[faults]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::faults::FaultEvent>,
    /// Set when a rollback happened: what was rolled back and why.
    #[serde(default)]
    pub rollback: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: String,
}

/// One step of the pipeline as it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// `preflight`, `start_b`, `converge`, `flip`, `drain_a`, `stop_a`, `reconcile`, `verdict`
    /// (and `rollback` when one happened).
    pub name: String,
    /// RFC 3339.
    pub started_at: String,
    /// Unix epoch ns, to place the step on the same axis as the ack log.
    pub started_ns: u64,
    pub duration_ms: u64,
    pub outcome: StepOutcome,
    /// One line on what happened (e.g. "record shop.example.com 10.0.0.1 → 10.0.0.2").
    #[serde(default)]
    pub detail: Option<String>,
}

/// Times a step from its start; [`StepTimer::finish`] makes its record.
#[derive(Debug)]
pub struct StepTimer {
    name: String,
    started_at: String,
    started_ns: u64,
    t0: Instant,
}

impl StepTimer {
    pub fn start(name: impl Into<String>) -> StepTimer {
        StepTimer {
            name: name.into(),
            started_at: rfc3339_now(),
            started_ns: unix_ns_now(),
            t0: Instant::now(),
        }
    }

    /// The record of the step, ended now (an empty detail is left out).
    pub fn finish(self, outcome: StepOutcome, detail: impl Into<String>) -> StepRecord {
        let detail = detail.into();
        StepRecord {
            name: self.name,
            started_at: self.started_at,
            started_ns: self.started_ns,
            duration_ms: u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome,
            detail: (!detail.is_empty()).then_some(detail),
        }
    }
}

/// Now, in Unix epoch ns: the axis the ack log and the steps share.
pub fn unix_ns_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Now, as the report writes times (RFC 3339, milliseconds, UTC).
pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    Failed,
    Skipped,
    /// The step's timeout passed before what it waits for happened, and the
    /// run went on (the drain: A still in use, then stopped gracefully).
    TimedOut,
}

/// How B caught up before the flip.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Convergence {
    /// From B healthy to B within the lag bound for the stable window.
    pub duration_ms: u64,
    /// Largest `head - applied` seen on B while converging.
    pub lag_max: u64,
    /// B's lag at the moment of the flip.
    #[serde(default)]
    pub lag_at_flip: u64,
    /// What was read (`converge.kind` and where), or that nothing was.
    #[serde(default)]
    pub source: String,
    /// False when the plan said there was nothing to measure (`wait`): the
    /// lags are then not known.
    #[serde(default = "measured_by_default")]
    pub measured: bool,
}

fn measured_by_default() -> bool {
    true
}

/// The verdict's limits. Defaults: nothing may fail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budgets {
    /// Requests that may end `indeterminate` or `rejected`.
    pub failed: u64,
    /// Longest allowed gap between two successful replies, in ms.
    pub max_gap_ms: f64,
    /// Missed schedule slots (in-flight cap hit) that are tolerated.
    pub missed: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            failed: 0,
            max_gap_ms: 2000.0,
            missed: 0,
        }
    }
}

/// Reports to test the rules and the rendering with.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use handover_contract::{Handover, LatencySummary};

    pub fn step(name: &str, outcome: StepOutcome) -> StepRecord {
        StepRecord {
            name: name.into(),
            started_at: "2024-01-01T00:00:00Z".into(),
            started_ns: 1,
            duration_ms: 1234,
            outcome,
            detail: None,
        }
    }

    /// A clean run: everything sent arrived, nothing failed.
    pub fn clean() -> MigrationReport {
        let mut feeder = FeederReport {
            sent: 1000,
            ok: 1000,
            target_rate: 100.0,
            achieved_rate: 99.9,
            duration_ms: 10_000,
            latency_ms: LatencySummary {
                p50: 1.5,
                p99: 4.25,
                p999: 8.0,
                max: 12.0,
                ..LatencySummary::default()
            },
            max_gap_ms: 40.0,
            handover: Some(Handover {
                from: "a".into(),
                to: "b".into(),
                first_new_ns: 1,
                last_old_ns: 2,
                overlap_ms: 120.0,
                window_p99_ms: Some(6.5),
            }),
            ..FeederReport::default()
        };
        feeder.instances.insert("a".into(), 600);
        feeder.instances.insert("b".into(), 400);
        MigrationReport {
            steps: vec![
                step("preflight", StepOutcome::Ok),
                step("flip", StepOutcome::Ok),
            ],
            feeder: Some(feeder),
            reconcile: Some(ReconcileReport {
                ok: 1000,
                acked_total: 1000,
                acked_ok: 1000,
                stored_total: 1000,
                ..ReconcileReport::default()
            }),
            convergence: Some(Convergence {
                duration_ms: 300,
                lag_max: 7,
                lag_at_flip: 0,
                source: "health".into(),
                measured: true,
            }),
            ..MigrationReport::default()
        }
    }
}
