//! Step 8, verdict: the report's rules ([`crate::report::verdict`]) plus
//! what the run itself went through (a rollback, a failure outside any
//! step), then the outputs: the human summary, the JSON report, the plot,
//! the HTML report.

use std::path::PathBuf;

use handover_contract::exit;

use super::progress::Printer;
use crate::report::{self, Budgets, MigrationReport};

/// Where the run's outputs go.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub report: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    /// The self-contained HTML report (`--html`).
    pub html: Option<PathBuf>,
}

/// Judges `report`: a rollback never passes, and `failures` (problems
/// outside the steps' own records) come first among the reasons.
pub fn judge(report: &mut MigrationReport, budgets: &Budgets, mut failures: Vec<String>) {
    report::verdict(report, budgets);
    if report.rollback.is_some() {
        // The verdict names the rollback among its reasons.
        report.passed = false;
    }
    if !failures.is_empty() {
        report.passed = false;
        failures.append(&mut report.reasons);
        report.reasons = failures;
    }
}

/// The verdict step's line.
pub fn detail(report: &MigrationReport) -> String {
    if report.passed {
        "passed".to_string()
    } else {
        format!("failed: {}", report.reasons.join("; "))
    }
}

/// The process exit code of a judged report.
pub fn exit_code(report: &MigrationReport) -> i32 {
    if report.passed {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// Prints the summary and writes the JSON report and the plot where asked.
pub fn write_outputs(
    out: &Printer,
    report: &MigrationReport,
    outputs: &Outputs,
    ack_logs: &[PathBuf],
) {
    // A fleet's runs (labelled with their host) are summed up by the fleet.
    if super::progress::LABEL.try_with(|_| ()).is_err() {
        let mut summary = vec![b'\n'];
        if let Err(e) = report::print_human(report, &mut summary, out.style.color) {
            tracing::warn!(error = %e, "cannot print the report");
        }
        // Through the printer: after the live view when it has the screen.
        out.text(&String::from_utf8_lossy(&summary));
    }
    if let Some(path) = &outputs.report {
        let res = serde_json::to_vec_pretty(report)
            .map_err(|e| e.to_string())
            .and_then(|b| std::fs::write(path, b).map_err(|e| e.to_string()));
        match res {
            Ok(()) => out.note(&format!("report: {}", path.display())),
            Err(e) => out.warn(&format!("cannot write report {}: {e}", path.display())),
        }
    }
    if let Some(path) = &outputs.plot {
        match crate::plot::render_report_merged(ack_logs, report, path) {
            Ok(()) => out.note(&format!("plot: {}", path.display())),
            Err(e) => out.warn(&format!("cannot draw plot {}: {e}", path.display())),
        }
    }
    if let Some(path) = &outputs.html {
        match crate::html::write(ack_logs, report, path) {
            Ok(()) => out.note(&format!("html: {}", path.display())),
            Err(e) => out.warn(&e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{StepOutcome, StepRecord};

    fn failed_step() -> MigrationReport {
        MigrationReport {
            steps: vec![StepRecord {
                name: "stop_a".into(),
                started_at: String::new(),
                started_ns: 0,
                duration_ms: 1,
                outcome: StepOutcome::Failed,
                detail: Some("still answering".into()),
            }],
            ..MigrationReport::default()
        }
    }

    #[test]
    fn run_failures_come_first_and_fail_the_verdict() {
        let mut r = failed_step();
        judge(&mut r, &Budgets::default(), vec!["A did not stop".into()]);
        assert!(!r.passed);
        assert_eq!(r.reasons[0], "A did not stop");
        assert!(r.reasons[1..]
            .iter()
            .any(|x| x.contains("step stop_a failed")));
        assert_eq!(exit_code(&r), exit::FAILED);
        assert!(detail(&r).starts_with("failed: A did not stop; "));
    }

    #[test]
    fn a_rollback_never_passes() {
        let mut r = MigrationReport {
            rollback: Some("B did not start".into()),
            ..MigrationReport::default()
        };
        judge(&mut r, &Budgets::default(), Vec::new());
        assert!(!r.passed);
        assert!(r
            .reasons
            .iter()
            .any(|x| x.contains("rolled back: B did not start")));
    }
}
