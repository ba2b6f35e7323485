//! The report's tables for the HTML page: the steps, the load, the
//! reconciliation (with the non-ok ids, a bounded number per category) and
//! the injected faults. Every value is escaped ([`Esc`]).

use std::fmt::Write;

use handover_contract::FeederReport;

use super::escape::Esc;
use crate::faults::FaultEvent;
use crate::reconcile::ReconcileReport;
use crate::report::{StepOutcome, StepRecord};

/// Ids listed per non-ok category; the rest are counted ("and 12 more").
pub const IDS_SHOWN: usize = 20;

fn outcome_class(o: StepOutcome) -> &'static str {
    match o {
        StepOutcome::Ok => "ok",
        StepOutcome::Failed => "failed",
        StepOutcome::Skipped => "skipped",
        StepOutcome::TimedOut => "timed_out",
    }
}

/// One row per step: name, start (seconds after the first), duration,
/// outcome, detail.
pub fn steps(o: &mut String, steps: &[StepRecord]) {
    let t0 = steps
        .iter()
        .map(|s| s.started_ns)
        .filter(|&n| n > 0)
        .min()
        .unwrap_or(0);
    o.push_str(
        r#"<table id="steps"><thead><tr><th>step</th><th>start</th><th>duration</th><th>outcome</th><th>detail</th></tr></thead><tbody>"#,
    );
    for s in steps {
        let class = outcome_class(s.outcome);
        let _ = write!(
            o,
            r#"<tr class="step {class}" data-step="{name}"><td>{name}</td><td class="num">{:.2} s</td><td class="num">{} ms</td><td class="outcome">{class}</td><td>{}</td></tr>"#,
            s.started_ns.saturating_sub(t0) as f64 / 1e9,
            s.duration_ms,
            Esc(s.detail.as_deref().unwrap_or("")),
            name = Esc(&s.name),
        );
    }
    o.push_str("</tbody></table>");
}

fn row(o: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = write!(
        o,
        "<tr><th>{}</th><td>{}</td></tr>",
        Esc(key),
        Esc(&value.to_string())
    );
}

/// What the load did: counts, rates, latency from the due time, the
/// longest gap, replies per instance, the handover.
pub fn feeder(o: &mut String, f: &FeederReport) {
    o.push_str(r#"<table id="feeder" class="kv"><tbody>"#);
    row(o, "sent", f.sent);
    row(o, "ok", f.ok);
    row(o, "rejected", f.rejected);
    row(o, "indeterminate", f.indeterminate);
    row(o, "missed", f.missed);
    row(
        o,
        "rate",
        format!(
            "{:.1}/s achieved of {:.1}/s",
            f.achieved_rate, f.target_rate
        ),
    );
    let l = &f.latency_ms;
    row(
        o,
        "latency (from due time)",
        format!(
            "p50 {:.2} ms · p99 {:.2} ms · p99.9 {:.2} ms · max {:.2} ms",
            l.p50, l.p99, l.p999, l.max
        ),
    );
    row(o, "longest gap", format!("{:.1} ms", f.max_gap_ms));
    let by: Vec<String> = f
        .instances
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    row(o, "replies by instance", by.join(" · "));
    if let Some(h) = &f.handover {
        row(
            o,
            "handover",
            format!(
                "{} → {}, both answered for {:.1} ms",
                h.from, h.to, h.overlap_ms
            ),
        );
    }
    o.push_str("</tbody></table>");
}

/// The per-order tallies, then the non-ok ids of each category that has any.
pub fn reconcile(o: &mut String, r: &ReconcileReport) {
    let cats: [(&str, u64, &[String]); 6] = [
        ("lost", r.lost, &r.ids.lost),
        ("unexpected", r.unexpected, &r.ids.unexpected),
        ("duplicated", r.duplicated, &r.ids.duplicated),
        ("mismatched", r.mismatched, &r.ids.mismatched),
        ("recovered", r.recovered, &r.ids.recovered),
        (
            "rejected but stored",
            r.rejected_present,
            &r.ids.rejected_present,
        ),
    ];
    o.push_str(
        r#"<table id="reconcile"><thead><tr><th>category</th><th>orders</th><th>ids</th></tr></thead><tbody>"#,
    );
    let _ = write!(
        o,
        r#"<tr class="cat ok" data-category="ok"><td>ok</td><td class="num">{}</td><td></td></tr>"#,
        r.ok
    );
    for (name, count, ids) in cats {
        let bad = count > 0 && name != "recovered";
        let class = if bad { "bad" } else { "" };
        let _ = write!(
            o,
            r#"<tr class="cat {class}" data-category="{name}"><td>{name}</td><td class="num">{count}</td><td class="ids">"#
        );
        for id in ids.iter().take(IDS_SHOWN) {
            let _ = write!(o, "<code>{}</code> ", Esc(id));
        }
        // Ids beyond those kept in the report are counted too.
        let more = count.saturating_sub(ids.len().min(IDS_SHOWN) as u64);
        if more > 0 && count > 0 {
            let _ = write!(o, r#"<span class="more">and {more} more</span>"#);
        }
        o.push_str("</td></tr>");
    }
    o.push_str("</tbody></table>");
    let _ = write!(
        o,
        r#"<p class="note">{} acks ({} distinct ids) against {} stored orders, read from {}{}.</p>"#,
        r.acked_total,
        r.acked_distinct,
        r.stored_total,
        Esc(&r.source),
        if r.foreign > 0 {
            format!("; {} foreign orders counted, not judged", r.foreign)
        } else {
            String::new()
        }
    );
}

/// The faults the nemesis fired.
pub fn faults(o: &mut String, faults: &[FaultEvent]) {
    o.push_str(
        r#"<table id="faults"><thead><tr><th>at</th><th>fault</th><th>injected</th><th>detail</th></tr></thead><tbody>"#,
    );
    for f in faults {
        let _ = write!(
            o,
            r#"<tr class="fault"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            Esc(&f.at),
            Esc(&f.fault),
            if f.injected { "yes" } else { "no" },
            Esc(&f.detail)
        );
    }
    o.push_str("</tbody></table>");
}
