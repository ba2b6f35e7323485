//! `migrator demo` end to end: the real edge, two real example-app processes
//! on a shared SQLite store, the in-process feeder, the whole pipeline.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use migrator::report::MigrationReport;

#[test]
fn demo_migrates_with_nothing_lost_and_counts_matching_the_ack_log() {
    sibling_bin("example-app");
    sibling_bin("edge");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let report_path = dir.path().join("report.json");
    let plot_path = dir.path().join("handover.svg");
    let out = run_migrator(
        &[
            "demo",
            "--rate",
            "200",
            "--duration",
            "8s",
            "--workdir",
            work.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
            "--plot",
            plot_path.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(240),
    );
    assert_eq!(
        out.code, 0,
        "demo failed\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let report: MigrationReport =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert!(report.passed, "{:?}", report.reasons);
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "preflight",
            "start_b",
            "converge",
            "flip",
            "drain_a",
            "stop_a",
            "reconcile",
            "verdict"
        ]
    );
    let feeder = report.feeder.as_ref().expect("feeder report");
    let rec = report.reconcile.as_ref().expect("reconcile report");
    let (lines, ok, rejected, indeterminate) = count_acks(&work.join("acks.jsonl"));
    assert!(lines > 500, "too little load to prove anything: {lines}");
    assert_eq!(feeder.sent, lines, "report sent vs ack-log lines");
    assert_eq!(feeder.ok, ok);
    assert_eq!(feeder.rejected, rejected);
    assert_eq!(feeder.indeterminate, indeterminate);
    assert_eq!((rejected, indeterminate), (0, 0), "no request may fail");
    assert_eq!(rec.ok, ok, "every acknowledged order is stored");
    assert_eq!(
        (rec.lost, rec.unexpected, rec.duplicated, rec.mismatched),
        (0, 0, 0, 0)
    );
    // Both instances carried traffic.
    assert!(
        feeder.instances.get("a").copied().unwrap_or(0) > 0,
        "{:?}",
        feeder.instances
    );
    assert!(
        feeder.instances.get("b").copied().unwrap_or(0) > 0,
        "{:?}",
        feeder.instances
    );
    let conv = report.convergence.as_ref().expect("convergence");
    assert!(conv.duration_ms > 0);
    // Steps were printed as they ran, and the kept workdir has everything.
    assert!(out.stdout.contains("▶ flip"), "{}", out.stdout);
    for f in [
        "acks.jsonl",
        "edge.log",
        "a.log",
        "b-start.log",
        "plan.toml",
        "events.db",
        "report.json",
    ] {
        assert!(work.join(f).exists(), "{f} missing in the workdir");
    }
    let svg = std::fs::read_to_string(&plot_path).unwrap();
    assert!(svg.contains("<svg"), "plot is not an SVG");
    // Every child is gone: nothing answers on A's or B's address any more.
    let plan = migrator::plan::Plan::load(Some(&work.join("plan.toml")), &[]).unwrap();
    for o in [&plan.a, &plan.b] {
        let addr = o.url.socket_addrs(|| None).unwrap()[0];
        assert!(
            eventually(Duration::from_secs(10), || !answers(addr)),
            "{addr} still answers after the demo"
        );
    }
    // The token never reaches the output.
    let edge_toml = std::fs::read_to_string(work.join("edge.toml")).unwrap();
    assert!(
        !edge_toml.contains("tokens = ["),
        "token written to edge.toml"
    );
}

#[test]
fn demo_rejects_a_bad_rate_before_starting_anything() {
    let out = run_migrator(&["demo", "--rate=-5"], &[], Duration::from_secs(30));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--rate"), "{}", out.stderr);
}

/// Blind spot: a drain that ran out of time was recorded `ok`. It is its
/// own outcome, and fails the run unless the plan says `continue`.
#[test]
fn a_drain_that_times_out_fails_unless_the_plan_continues() {
    let run = |on_timeout: &str| -> (i32, MigrationReport) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let out = run_migrator(
            &[
                "demo",
                "--rate",
                "100",
                "--duration",
                "6s",
                // A stays in use through the 2 s propagation window: a 1 s
                // drain cannot see it quiet.
                "--set",
                "timeouts.drain=1s",
                "--set",
                "drain.quiet=500ms",
                "--set",
                &format!("drain.on_timeout={on_timeout}"),
                "--workdir",
                work.to_str().unwrap(),
            ],
            &[],
            Duration::from_secs(240),
        );
        let r: MigrationReport =
            serde_json::from_slice(&std::fs::read(work.join("report.json")).unwrap()).unwrap();
        (out.code, r)
    };
    let (code, r) = run("fail");
    let drain = r.steps.iter().find(|s| s.name == "drain_a").unwrap();
    assert_eq!(drain.outcome, migrator::report::StepOutcome::TimedOut);
    assert_eq!(code, 1, "{:?}", r.reasons);
    assert!(
        r.reasons.iter().any(|x| x.contains("drain_a timed out")),
        "{:?}",
        r.reasons
    );
    // With `continue` the timeout itself is no reason; what stopping A
    // early did to requests still routed to it is judged as usual.
    let (_, r) = run("continue");
    let drain = r.steps.iter().find(|s| s.name == "drain_a").unwrap();
    assert_eq!(drain.outcome, migrator::report::StepOutcome::TimedOut);
    assert!(
        !r.reasons.iter().any(|x| x.contains("drain_a timed out")),
        "{:?}",
        r.reasons
    );
}
