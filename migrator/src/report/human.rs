//! The summary people read at the end of a run: steps, feeder, convergence,
//! reconciliation, the classic `result:` line and a PASS/FAIL banner.

use handover_cli::Style;

use super::verdict::first_ids;
use super::{MigrationReport, StepOutcome};

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
                StepOutcome::TimedOut => s.warn("TIMEOUT"),
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
        if f.queued_max_ms >= 5.0 {
            writeln!(
                out,
                "  {}",
                s.warn(format!(
                    "requests waited up to {:.0} ms inside the feeder for a free connection",
                    f.queued_max_ms
                ))
            )?;
        }
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
        if c.measured {
            writeln!(
                out,
                "  {} to catch up, lag max {}, lag at flip {}",
                ms(c.duration_ms),
                c.lag_max,
                c.lag_at_flip
            )?;
        } else {
            writeln!(out, "  not measured: {}", s.warn(&c.source))?;
        }
    }
    if let (None, Some(why)) = (&report.reconcile, &report.unreconciled) {
        writeln!(out, "{}", s.heading("reconcile"))?;
        writeln!(out, "  {} {why}", s.warn("not reconciled:"))?;
    }
    if let Some(r) = &report.reconcile {
        writeln!(out, "{}", s.heading("reconcile"))?;
        if !r.source.is_empty() {
            writeln!(out, "  {}", s.dim(format!("read {}", r.source)))?;
        }
        // A report of an older migrator names no source, and did wait.
        let waited = if r.source.is_empty() || !r.waited_on.is_empty() {
            format!(
                "applied {} of head {}, waited {}",
                r.applied,
                r.head,
                ms(r.wait_ms)
            )
        } else {
            "read without waiting: nothing said how far B had applied".to_string()
        };
        writeln!(
            out,
            "  acked {} (ok {}, rejected {}, indeterminate {})  stored {}  {}",
            r.acked_total,
            r.acked_ok,
            r.acked_rejected,
            r.acked_indeterminate,
            r.stored_total,
            s.dim(waited)
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
                    "{} stored orders had no user/digest on one side (ack log or listing) to compare",
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
    if !report.faults.is_empty() {
        writeln!(out, "{}", s.heading("faults"))?;
        for f in &report.faults {
            let mark = if f.injected {
                s.bad("⚡")
            } else {
                s.warn("⚡ not injected")
            };
            writeln!(
                out,
                "  {mark} {} at {}: {}",
                f.fault,
                f.at,
                s.dim(&f.detail)
            )?;
        }
    }
    if let Some(why) = &report.rollback {
        writeln!(out, "{} {why}", s.nonzero("rollback:"))?;
    }
    let (failed, succeeded) = match (&report.feeder, &report.reconcile) {
        // Missed slots never reached the service: failed, as a client sees it.
        (Some(f), _) => (f.rejected + f.indeterminate + f.missed, f.ok),
        (None, Some(r)) => (r.acked_rejected + r.acked_indeterminate, r.acked_ok),
        (None, None) => (0, 0),
    };
    writeln!(out, "result: failed = {failed} succeeded = {succeeded}")?;
    let lost = report
        .reconcile
        .as_ref()
        .map_or("?".to_string(), |r| r.lost.to_string());
    if report.passed && report.reconcile.is_none() && report.unreconciled.is_some() {
        let line = format!("  PASS  {failed} failed, within budgets; NOT RECONCILED  ");
        writeln!(out, "{}", s.banner_pass(line))?;
    } else if report.passed {
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
    use crate::report::fixture::clean;
    use crate::report::{verdict, Budgets};

    fn render(r: &MigrationReport, color: bool) -> String {
        let mut buf = Vec::new();
        print_human(r, &mut buf, color).unwrap();
        String::from_utf8(buf).unwrap()
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

    #[test]
    fn not_reconciled_is_said_where_the_reconciliation_would_be() {
        let mut r = MigrationReport {
            reconcile: None,
            unreconciled: Some("the plan says reconcile.kind = \"none\"".into()),
            ..clean()
        };
        verdict(&mut r, &Budgets::default());
        let text = render(&r, false);
        assert!(
            text.contains("reconcile\n  not reconciled: the plan says reconcile.kind = \"none\""),
            "{text}"
        );
        assert!(
            text.contains("PASS  0 failed, within budgets; NOT RECONCILED"),
            "{text}"
        );
        assert!(!text.contains("handover proven"), "{text}");
    }

    #[test]
    fn the_source_read_and_whether_b_was_waited_for_are_said() {
        let mut r = clean();
        let c = r.reconcile.as_mut().unwrap();
        c.source = "command `list-ids` (one id per line)".into();
        let text = render(&r, false);
        assert!(text.contains("read command `list-ids`"), "{text}");
        assert!(text.contains("read without waiting"), "{text}");
        r.reconcile.as_mut().unwrap().waited_on = "prometheus".into();
        assert!(render(&r, false).contains("applied 0 of head 0, waited 0 ms"));
    }
}
