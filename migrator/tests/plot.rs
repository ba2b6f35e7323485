//! The timeline plot from a synthetic ack log: a valid SVG naming the
//! instances and the steps.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use handover_contract::{AckRecord, Outcome};
use migrator::plot::{render, render_report, PlotError};
use migrator::report::{MigrationReport, StepOutcome, StepRecord};

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

/// 10 s at 200/s: "alpha" answers until 5 s, both overlap for 300 ms, then
/// "bravo"; a short burst of failures and slow replies around the flip.
fn write_acks(path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..2000u64 {
        let due = T0 + i * 5 * MS;
        let t_ms = i * 5;
        let instance = if t_ms < 5000 || (t_ms < 5300 && i % 2 == 0) {
            "alpha"
        } else {
            "bravo"
        };
        let failed = (4950..5000).contains(&t_ms) && i % 3 == 0;
        let latency_us = if (4900..5400).contains(&t_ms) {
            40_000 + (i % 7) * 5_000
        } else {
            1_500 + (i % 11) * 100
        };
        let rec = AckRecord {
            id: format!("run-{i:06}"),
            due_ns: due,
            done_ns: due + latency_us * 1000,
            outcome: if failed {
                Outcome::Indeterminate
            } else {
                Outcome::Ok
            },
            status: if failed { Some(503) } else { Some(201) },
            instance: if failed { None } else { Some(instance.into()) },
            latency_us,
            user_id: None,
            items_digest: None,
        };
        writeln!(f, "{}", serde_json::to_string(&rec).unwrap()).unwrap();
    }
}

fn step(name: &str, start_ms: u64, duration_ms: u64) -> StepRecord {
    StepRecord {
        name: name.into(),
        started_at: String::new(),
        started_ns: T0 + start_ms * MS,
        duration_ms,
        outcome: StepOutcome::Ok,
        detail: None,
    }
}

fn steps() -> Vec<StepRecord> {
    vec![
        step("preflight", 200, 150),
        step("start_b", 400, 1800),
        step("converge", 2200, 2500),
        step("flip", 4900, 120),
        step("drain_a", 5100, 2200),
        step("stop_a", 7400, 400),
        step("reconcile", 10100, 300),
        step("verdict", 10400, 5),
    ]
}

#[test]
fn renders_a_readable_svg_with_instances_steps_and_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acks.jsonl");
    write_acks(&acks);
    let out = dir.path().join("handover.svg");
    render(&acks, &steps(), &out).unwrap();
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for needle in [
        "instance alpha",
        "instance bravo",
        "failed (rejected + indeterminate)",
        "preflight",
        "start_b",
        "converge",
        "flip",
        "drain_a",
        "stop_a",
        "reconcile",
        "handover timeline: PASS",
        "seconds since start",
        "first reply from the new instance",
    ] {
        assert!(svg.contains(needle), "SVG lacks {needle:?}");
    }
    if let Ok(dest) = std::env::var("HANDOVER_PLOT_KEEP") {
        std::fs::copy(&out, dest).unwrap();
    }
}

#[test]
fn a_failed_report_says_so_in_the_title() {
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acks.jsonl");
    write_acks(&acks);
    let out = dir.path().join("fail.svg");
    let report = MigrationReport {
        passed: false,
        reasons: vec!["lost = 3: acknowledged orders absent from B".into()],
        steps: steps(),
        ..MigrationReport::default()
    };
    render_report(&acks, &report, &out).unwrap();
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(
        svg.contains("handover timeline: FAIL (lost = 3"),
        "no verdict in title"
    );
}

#[test]
fn a_missing_ack_log_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.svg");
    let err = render(&dir.path().join("missing.jsonl"), &steps(), &out).unwrap_err();
    assert!(matches!(err, PlotError::AckLog(_)), "{err}");
    assert!(err.to_string().contains("missing.jsonl"));
    assert!(!out.exists());
}
