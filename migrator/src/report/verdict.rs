//! The verdict: pass only if nothing was lost, unexpected, duplicated or
//! altered, failures, downtime and missed slots are within budget, no step
//! failed, and the reconciliation ran — unless the plan says there is
//! nothing to reconcile against (`unreconciled`), when only failures and
//! downtime are judged. Each broken rule is one reason with its numbers.

use super::{Budgets, MigrationReport, StepOutcome};

/// Sets `report.passed` and `report.reasons` from the counts and the budgets:
/// pass only if nothing was lost, unexpected, duplicated or altered, failures,
/// downtime and missed slots are within budget, no step failed, and the
/// reconciliation ran. Each broken rule adds one reason with its numbers.
pub fn verdict(report: &mut MigrationReport, budgets: &Budgets) {
    let mut reasons = Vec::new();
    step_reasons(report, &mut reasons);
    reconcile_reasons(report, &mut reasons);
    match &report.feeder {
        Some(f) => {
            let failed = f.rejected + f.indeterminate;
            if failed > budgets.failed {
                reasons.push(format!(
                    "failed requests = {failed} (rejected {}, indeterminate {}) > budget {}",
                    f.rejected, f.indeterminate, budgets.failed
                ));
            }
            if f.max_gap_ms > budgets.max_gap_ms {
                reasons.push(format!(
                    "max gap between successful replies = {:.0} ms > budget {:.0} ms",
                    f.max_gap_ms, budgets.max_gap_ms
                ));
            }
            if f.missed > budgets.missed {
                reasons.push(format!(
                    "missed schedule slots = {} > budget {} (in-flight cap hit)",
                    f.missed, budgets.missed
                ));
            }
        }
        None => reasons.push("no feeder report: failures and downtime were not measured".into()),
    }
    report.passed = reasons.is_empty();
    report.reasons = reasons;
}

/// The verdict of `migrator reconcile` alone: the reconciliation rules and
/// the steps, without the feeder's budgets (there is no feeder run to judge).
pub fn verdict_reconcile(report: &mut MigrationReport) {
    let mut reasons = Vec::new();
    step_reasons(report, &mut reasons);
    reconcile_reasons(report, &mut reasons);
    report.passed = reasons.is_empty();
    report.reasons = reasons;
}

fn step_reasons(report: &MigrationReport, reasons: &mut Vec<String>) {
    for step in report
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Failed)
    {
        match &step.detail {
            Some(d) => reasons.push(format!("step {} failed: {d}", step.name)),
            None => reasons.push(format!("step {} failed", step.name)),
        }
    }
    if let Some(why) = &report.rollback {
        reasons.push(format!("rolled back: {why}"));
    }
}

fn reconcile_reasons(report: &MigrationReport, reasons: &mut Vec<String>) {
    let Some(r) = &report.reconcile else {
        // The plan chose to prove nothing about storage: not a failure, and
        // the summary says so.
        if report.unreconciled.is_none() {
            reasons.push("reconciliation did not run: nothing proves the orders arrived".into());
        }
        return;
    };
    let first = |ids: &[String]| {
        if ids.is_empty() {
            String::new()
        } else {
            format!(" (first: {})", first_ids(ids, 3))
        }
    };
    let unexpected = format!(
        "stored but never acknowledged (rejected yet stored {}, never sent {})",
        r.rejected_present, r.never_sent
    );
    let rules = [
        (
            "lost",
            r.lost,
            "acknowledged orders absent from B",
            &r.ids.lost,
        ),
        (
            "unexpected",
            r.unexpected,
            unexpected.as_str(),
            &r.ids.unexpected,
        ),
        (
            "duplicated",
            r.duplicated,
            "ids listed more than once",
            &r.ids.duplicated,
        ),
        (
            "mismatched",
            r.mismatched,
            "stored user or content differs from what was sent",
            &r.ids.mismatched,
        ),
    ];
    for (name, n, what, ids) in rules {
        if n > 0 {
            reasons.push(format!("{name} = {n}: {what}{}", first(ids)));
        }
    }
}

pub(super) fn first_ids(ids: &[String], n: usize) -> String {
    let mut text = ids.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > n {
        text.push_str(&format!(", … ({} more listed)", ids.len() - n));
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::fixture::{clean, step};

    #[test]
    fn a_clean_run_passes() {
        let mut r = clean();
        verdict(&mut r, &Budgets::default());
        assert!(r.passed, "{:?}", r.reasons);
        assert!(r.reasons.is_empty());
    }

    #[test]
    fn every_broken_rule_is_a_reason_with_numbers() {
        let mut r = clean();
        r.steps.push(step("drain_a", StepOutcome::Failed));
        {
            let f = r.feeder.as_mut().unwrap();
            f.rejected = 2;
            f.indeterminate = 3;
            f.max_gap_ms = 2500.0;
            f.missed = 9;
        }
        {
            let c = r.reconcile.as_mut().unwrap();
            c.lost = 4;
            c.ids.lost = vec!["o1".into(), "o2".into()];
            c.unexpected = 2;
            c.rejected_present = 1;
            c.never_sent = 1;
            c.duplicated = 1;
            c.mismatched = 5;
        }
        verdict(&mut r, &Budgets::default());
        assert!(!r.passed);
        let all = r.reasons.join("\n");
        for needle in [
            "step drain_a failed",
            "lost = 4",
            "first: o1, o2",
            "unexpected = 2",
            "rejected yet stored 1",
            "duplicated = 1",
            "mismatched = 5",
            "failed requests = 5 (rejected 2, indeterminate 3) > budget 0",
            "2500 ms > budget 2000 ms",
            "missed schedule slots = 9 > budget 0",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(r.reasons.len(), 8);
    }

    #[test]
    fn budgets_allow_what_they_allow() {
        let mut r = clean();
        r.feeder.as_mut().unwrap().indeterminate = 3;
        let budgets = Budgets {
            failed: 3,
            ..Budgets::default()
        };
        verdict(&mut r, &budgets);
        assert!(r.passed, "{:?}", r.reasons);
    }

    #[test]
    fn no_reconciliation_or_feeder_is_no_pass() {
        let mut r = clean();
        r.reconcile = None;
        r.feeder = None;
        verdict(&mut r, &Budgets::default());
        assert!(!r.passed);
        assert!(r
            .reasons
            .iter()
            .any(|x| x.contains("reconciliation did not run")));
        assert!(r.reasons.iter().any(|x| x.contains("no feeder report")));
    }

    #[test]
    fn not_reconciled_by_plan_judges_only_failures_and_downtime() {
        let mut r = clean();
        r.reconcile = None;
        r.unreconciled = Some("reconcile.kind = \"none\"".into());
        verdict(&mut r, &Budgets::default());
        assert!(r.passed, "{:?}", r.reasons);
        verdict_reconcile(&mut r);
        assert!(r.passed, "{:?}", r.reasons);

        r.feeder.as_mut().unwrap().indeterminate = 2;
        r.feeder.as_mut().unwrap().max_gap_ms = 9000.0;
        verdict(&mut r, &Budgets::default());
        assert!(!r.passed);
        assert_eq!(r.reasons.len(), 2, "{:?}", r.reasons);
        assert!(r.reasons.iter().all(|x| !x.contains("reconciliation")));

        // A reconciliation that did run is judged, whatever the flag says.
        let mut r = clean();
        r.unreconciled = Some("none".into());
        r.reconcile.as_mut().unwrap().lost = 1;
        verdict(&mut r, &Budgets::default());
        assert!(!r.passed);
    }
}
