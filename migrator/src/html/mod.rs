//! The HTML report (`--html FILE`, and `report.html` in the demo's
//! workdir): one self-contained page to open in a browser and share. The
//! CSS, the script and the chart (inline SVG) are in the file; it fetches
//! nothing. It shows the verdict, the timeline chart, the steps, the load,
//! the reconciliation with its non-ok ids (bounded) and the faults.
//!
//! - [`chart`]: the timeline as inline SVG, from the plot's [`crate::plot::Series`].
//! - [`tables`]: the steps, load, reconcile and fault tables.
//! - [`escape`]: every text escaped on its way into the page.

pub mod chart;
pub mod escape;
pub mod tables;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use escape::Esc;

use crate::plot::Timeline;
use crate::report::MigrationReport;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// The page could not be written where the command line said.
    #[error("cannot write the HTML report {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes the report of `report` to `out`, the chart drawn from the ack logs
/// `acks` (several feeders' merged in completion order; a page without a
/// chart, saying why, when they cannot be read).
pub fn write(acks: &[PathBuf], report: &MigrationReport, out: &Path) -> Result<(), HtmlError> {
    let timeline = Timeline::from_files(acks);
    let page = render(report, timeline.as_ref().map_err(|e| e.to_string()));
    std::fs::write(out, page).map_err(|source| HtmlError::Write {
        path: out.to_path_buf(),
        source,
    })
}

/// The whole page (pure). `timeline` is the bucketed ack log, or why there
/// is none.
pub fn render(report: &MigrationReport, timeline: Result<&Timeline, String>) -> String {
    let mut o = String::with_capacity(128 * 1024);
    let word = if report.passed { "PASS" } else { "FAIL" };
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>handover report: {word}</title><style>{CSS}</style></head><body>"#
    );
    let _ = write!(
        o,
        r#"<h1>handover report</h1><p class="meta">started {} · finished {}</p>"#,
        Esc(&report.started_at),
        Esc(&report.finished_at)
    );
    verdict(&mut o, report);

    o.push_str(r#"<h2>timeline</h2>"#);
    match timeline {
        Ok(t) => {
            o.push_str(&chart::svg(t, &report.steps, &report.faults));
            legend(&mut o, t);
        }
        Err(why) => {
            let _ = write!(
                o,
                r#"<p class="note" id="no-chart">no chart: {}</p>"#,
                Esc(&why)
            );
        }
    }
    o.push_str("<h2>steps</h2>");
    tables::steps(&mut o, &report.steps);
    if !report.faults.is_empty() {
        o.push_str("<h2>injected faults</h2>");
        tables::faults(&mut o, &report.faults);
    }
    o.push_str("<h2>load</h2>");
    match &report.feeder {
        Some(f) => tables::feeder(&mut o, f),
        None => o.push_str(r#"<p class="note">no feeder report</p>"#),
    }
    if let Some(c) = &report.convergence {
        o.push_str("<h2>convergence</h2>");
        let lags = if c.measured {
            format!("lag max {}, at the flip {}", c.lag_max, c.lag_at_flip)
        } else {
            "lag not measured".to_string()
        };
        let _ = write!(
            o,
            r#"<p id="convergence">{} ms ({}; read from {})</p>"#,
            c.duration_ms,
            Esc(&lags),
            Esc(&c.source)
        );
    }
    o.push_str("<h2>reconcile</h2>");
    match (&report.reconcile, &report.unreconciled) {
        (Some(r), _) => tables::reconcile(&mut o, r),
        (None, Some(why)) => {
            let _ = write!(o, r#"<p class="note">not reconciled: {}</p>"#, Esc(why));
        }
        (None, None) => o.push_str(r#"<p class="note">not reconciled</p>"#),
    }
    let _ = writeln!(o, "<script>{JS}</script></body></html>");
    o
}

fn verdict(o: &mut String, report: &MigrationReport) {
    let (class, word) = if report.passed {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = write!(
        o,
        r#"<section id="verdict" class="{class}"><span class="word">{word}</span>"#
    );
    if !report.reasons.is_empty() {
        o.push_str("<ul>");
        for r in &report.reasons {
            let _ = write!(o, "<li>{}</li>", Esc(r));
        }
        o.push_str("</ul>");
    }
    if let Some(rb) = &report.rollback {
        let _ = write!(o, r#"<p class="rollback">rollback: {}</p>"#, Esc(rb));
    }
    o.push_str("</section>");
}

/// One entry per series (clickable: hides or shows it).
fn legend(o: &mut String, t: &Timeline) {
    o.push_str(r#"<ul id="legend">"#);
    for (i, name) in t.instances.iter().enumerate() {
        let _ = write!(
            o,
            r#"<li data-key="{key}"><span class="swatch" style="background:{}"></span>instance {key}</li>"#,
            chart::instance_colour(i),
            key = Esc(name)
        );
    }
    let _ = write!(
        o,
        r#"<li data-key="failed"><span class="swatch" style="background:{}"></span>failed (rejected + indeterminate)</li></ul>"#,
        chart::failure_colour()
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use handover_contract::{AckRecord, Outcome};

    fn timeline() -> Timeline {
        let mut t = Timeline::default();
        let base = 1_700_000_000_000_000_000u64;
        for i in 0..40u64 {
            let instance = if i < 20 { "a" } else { "b<x>" };
            t.add(&AckRecord {
                id: format!("o{i}"),
                due_ns: base + i * 50_000_000,
                done_ns: base + i * 50_000_000,
                outcome: if i == 30 {
                    Outcome::Indeterminate
                } else {
                    Outcome::Ok
                },
                status: None,
                instance: Some(instance.into()),
                latency_us: 1500,
                user_id: None,
                items_digest: None,
            })
            .unwrap();
        }
        t
    }

    #[test]
    fn a_passing_report_has_its_verdict_steps_and_one_series_per_instance() {
        let r = MigrationReport {
            passed: true,
            ..fixture::clean()
        };
        let page = render(&r, Ok(&timeline()));
        assert!(page.contains(r#"<section id="verdict" class="pass"><span class="word">PASS"#));
        assert_eq!(page.matches(r#"<tr class="step ok""#).count(), 2);
        assert_eq!(page.matches(r#"data-series="instance""#).count(), 2);
        assert_eq!(page.matches(r#"data-series="failed""#).count(), 1);
        // An instance name is text from the network: escaped everywhere.
        assert!(page.contains(r#"data-instance="b&lt;x&gt;""#));
        assert!(!page.contains("b<x>"));
        // Self-contained: nothing is fetched.
        assert!(!page.contains("src=") && !page.contains("href="));
    }

    #[test]
    fn failures_name_their_reasons_and_the_ids_are_bounded() {
        let mut r = fixture::clean();
        r.passed = false;
        r.reasons = vec!["2 acknowledged orders lost <b>".into()];
        let rec = r.reconcile.as_mut().unwrap();
        rec.lost = 25;
        rec.ids.lost = (0..25).map(|i| format!("run-{i}")).collect();
        let page = render(&r, Err("the ack log is empty".into()));
        assert!(page.contains(r#"class="fail"><span class="word">FAIL"#));
        assert!(page.contains("<li>2 acknowledged orders lost &lt;b&gt;</li>"));
        assert_eq!(page.matches("<code>run-").count(), tables::IDS_SHOWN);
        assert!(page.contains("and 5 more"));
        assert!(page.contains(r#"id="no-chart">no chart: the ack log is empty"#));
    }
}
