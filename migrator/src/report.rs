//! The migrator's report: JSON for machines (`--report`), a colored summary for
//! people, and the verdict that decides the exit code.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use handover_cli::Style;
use handover_contract::FeederReport;
use serde::{Deserialize, Serialize};

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
    #[serde(default)]
    pub convergence: Option<Convergence>,
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
        reasons.push("reconciliation did not run: nothing proves the orders arrived".into());
        return;
    };
    let first = |ids: &[String]| {
        if ids.is_empty() {
            String::new()
        } else {
            format!(" (first: {})", first_ids(ids, 3))
        }
    };
    if r.lost > 0 {
        reasons.push(format!(
            "lost = {}: acknowledged orders absent from B{}",
            r.lost,
            first(&r.ids.lost)
        ));
    }
    if r.unexpected > 0 {
        reasons.push(format!(
            "unexpected = {}: stored but never acknowledged (rejected yet stored {}, never sent {}){}",
            r.unexpected,
            r.rejected_present,
            r.never_sent,
            first(&r.ids.unexpected)
        ));
    }
    if r.duplicated > 0 {
        reasons.push(format!(
            "duplicated = {}: ids listed more than once{}",
            r.duplicated,
            first(&r.ids.duplicated)
        ));
    }
    if r.mismatched > 0 {
        reasons.push(format!(
            "mismatched = {}: stored user or line items differ from what was sent{}",
            r.mismatched,
            first(&r.ids.mismatched)
        ));
    }
}

fn first_ids(ids: &[String], n: usize) -> String {
    let mut text = ids.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > n {
        text.push_str(&format!(", … ({} more listed)", ids.len() - n));
    }
    text
}

fn ms(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} s", v as f64 / 1000.0)
    } else {
        format!("{v} ms")
    }
}

/// Writes the human summary of `report`: steps, feeder, convergence,
/// reconciliation, the classic `result:` line and a PASS/FAIL banner.
pub fn print_human(
    report: &MigrationReport,
    out: &mut dyn std::io::Write,
    color: bool,
) -> std::io::Result<()> {
    let s = Style::new(color);
    if !report.steps.is_empty() {
        writeln!(out, "{}", s.heading("steps"))?;
        for step in &report.steps {
            let mark = match step.outcome {
                StepOutcome::Ok => s.good("ok     "),
                StepOutcome::Failed => s.bad("FAILED "),
                StepOutcome::Skipped => s.dim("skipped"),
            };
            let detail = step.detail.as_deref().map(|d| format!("  {}", s.dim(d)));
            writeln!(
                out,
                "  {mark} {:<10} {:>9}{}",
                step.name,
                ms(step.duration_ms),
                detail.unwrap_or_default()
            )?;
        }
    }
    if let Some(f) = &report.feeder {
        writeln!(out, "{}", s.heading("feeder"))?;
        writeln!(
            out,
            "  sent {}  ok {}  rejected {}  indeterminate {}  missed {}",
            f.sent,
            f.ok,
            s.zero(f.rejected),
            s.zero(f.indeterminate),
            s.zero(f.missed)
        )?;
        writeln!(
            out,
            "  rate {:.1}/s achieved of {:.1}/s target over {}",
            f.achieved_rate,
            f.target_rate,
            ms(f.duration_ms)
        )?;
        let l = &f.latency_ms;
        writeln!(
            out,
            "  latency ms  p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50, l.p99, l.p999, l.max
        )?;
        writeln!(
            out,
            "  max gap {:.0} ms (longest time without a successful reply)",
            f.max_gap_ms
        )?;
        let replies: u64 = f.instances.values().sum();
        let shares: Vec<String> = f
            .instances
            .iter()
            .map(|(name, n)| {
                let pct = if replies == 0 {
                    0.0
                } else {
                    *n as f64 * 100.0 / replies as f64
                };
                format!("{name} {n} ({pct:.1}%)")
            })
            .collect();
        writeln!(
            out,
            "  instances  {}",
            if shares.is_empty() {
                "none".into()
            } else {
                shares.join("  ")
            }
        )?;
        match &f.handover {
            Some(h) => {
                let window = h
                    .window_p99_ms
                    .map(|p| {
                        format!(
                            ", p99 in the window {p:.2} ms vs overall p99 {:.2} ms",
                            l.p99
                        )
                    })
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  handover {} → {}: overlap {:.0} ms (both answering){window}",
                    h.from, h.to, h.overlap_ms
                )?;
            }
            None => writeln!(out, "  handover {}", s.dim("no instance change seen"))?,
        }
    }
    if let Some(c) = &report.convergence {
        writeln!(out, "{}", s.heading("convergence"))?;
        writeln!(
            out,
            "  {} to catch up, lag max {}, lag at flip {}",
            ms(c.duration_ms),
            c.lag_max,
            c.lag_at_flip
        )?;
    }
    if let Some(r) = &report.reconcile {
        writeln!(out, "{}", s.heading("reconcile"))?;
        writeln!(
            out,
            "  acked {} (ok {}, rejected {}, indeterminate {})  stored {}  {}",
            r.acked_total,
            r.acked_ok,
            r.acked_rejected,
            r.acked_indeterminate,
            r.stored_total,
            s.dim(format!(
                "applied {} of head {}, waited {}",
                r.applied,
                r.head,
                ms(r.wait_ms)
            ))
        )?;
        writeln!(
            out,
            "  ok {}  lost {}  unexpected {}  duplicated {}  mismatched {}",
            s.good(r.ok),
            s.zero(r.lost),
            s.zero(r.unexpected),
            s.zero(r.duplicated),
            s.zero(r.mismatched)
        )?;
        writeln!(
            out,
            "  recovered {}  indeterminate absent {}  rejected absent {}  rejected but stored {}  never sent {}",
            r.recovered,
            r.indeterminate_absent,
            r.rejected_absent,
            s.zero(r.rejected_present),
            s.zero(r.never_sent)
        )?;
        if r.foreign > 0 {
            writeln!(
                out,
                "  {}",
                s.dim(format!(
                    "{} stored orders belong to other runs or clients: counted, not judged",
                    r.foreign
                ))
            )?;
        }
        if r.content_unchecked > 0 {
            writeln!(
                out,
                "  {}",
                s.dim(format!(
                    "{} stored orders had no user/digest in the ack log to compare",
                    r.content_unchecked
                ))
            )?;
        }
        let lists = [
            ("lost", &r.ids.lost),
            ("unexpected", &r.ids.unexpected),
            ("rejected but stored", &r.ids.rejected_present),
            ("duplicated", &r.ids.duplicated),
            ("mismatched", &r.ids.mismatched),
            ("recovered", &r.ids.recovered),
        ];
        for (name, ids) in lists.into_iter().filter(|(_, ids)| !ids.is_empty()) {
            writeln!(out, "  {name} ids: {}", first_ids(ids, 10))?;
        }
    }
    if let Some(why) = &report.rollback {
        writeln!(out, "{} {why}", s.nonzero("rollback:"))?;
    }
    let (failed, succeeded) = match (&report.feeder, &report.reconcile) {
        (Some(f), _) => (f.rejected + f.indeterminate, f.ok),
        (None, Some(r)) => (r.acked_rejected + r.acked_indeterminate, r.acked_ok),
        (None, None) => (0, 0),
    };
    writeln!(out, "result: failed = {failed} succeeded = {succeeded}")?;
    let lost = report
        .reconcile
        .as_ref()
        .map_or("?".to_string(), |r| r.lost.to_string());
    if report.passed {
        let line = format!("  PASS  handover proven: {lost} lost, {failed} failed  ");
        writeln!(out, "{}", s.banner_pass(line))?;
    } else {
        let line = format!("  FAIL  {} reason(s)  ", report.reasons.len());
        writeln!(out, "{}", s.banner_fail(line))?;
        for reason in &report.reasons {
            writeln!(out, "  - {reason}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use handover_contract::{Handover, LatencySummary};

    fn step(name: &str, outcome: StepOutcome) -> StepRecord {
        StepRecord {
            name: name.into(),
            started_at: "2024-01-01T00:00:00Z".into(),
            started_ns: 1,
            duration_ms: 1234,
            outcome,
            detail: None,
        }
    }

    fn clean() -> MigrationReport {
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
            }),
            ..MigrationReport::default()
        }
    }

    fn render(r: &MigrationReport, color: bool) -> String {
        let mut buf = Vec::new();
        print_human(r, &mut buf, color).unwrap();
        String::from_utf8(buf).unwrap()
    }

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
    fn human_report_has_every_section_and_no_colour_when_plain() {
        let mut r = clean();
        verdict(&mut r, &Budgets::default());
        let text = render(&r, false);
        for needle in [
            "steps",
            "preflight",
            "1234 ms",
            "sent 1000  ok 1000",
            "99.9/s achieved of 100.0/s target",
            "p50 1.50  p99 4.25  p99.9 8.00  max 12.00",
            "max gap 40 ms",
            "a 600 (60.0%)  b 400 (40.0%)",
            "handover a → b: overlap 120 ms",
            "p99 in the window 6.50 ms vs overall p99 4.25 ms",
            "convergence",
            "lag max 7",
            "ok 1000  lost 0  unexpected 0  duplicated 0  mismatched 0",
            "result: failed = 0 succeeded = 1000",
            "PASS",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(!text.contains('\x1b'), "{text}");
    }

    #[test]
    fn human_report_shows_failures_ids_and_colour() {
        let mut r = clean();
        let c = r.reconcile.as_mut().unwrap();
        c.lost = 2;
        c.ids.lost = vec!["order-7".into(), "order-9".into()];
        verdict(&mut r, &Budgets::default());
        let text = render(&r, true);
        assert!(text.contains("lost ids: order-7, order-9"), "{text}");
        assert!(text.contains("FAIL"), "{text}");
        assert!(text.contains("- lost = 2"), "{text}");
        assert!(
            text.contains("\x1b[31m2\x1b[0m"),
            "lost count not red: {text}"
        );
        assert!(text.contains("\x1b[1;97;41m"), "no red banner: {text}");
    }
}
