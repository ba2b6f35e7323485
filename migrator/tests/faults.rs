//! The fault matrix: `migrator demo` with a fault fired at the step where it
//! hurts most, one test per row of docs/reliability.md. Every row asserts
//! its expected verdict and, whatever the verdict, that no acknowledged
//! order was lost and the fault is in the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::pg::{pg_sh, Pg};
use common::*;
use migrator::report::{MigrationReport, StepOutcome};

/// A demo run with `faults` (and `extra` flags); its exit, report and workdir.
struct Row {
    out: Finished,
    report: MigrationReport,
    _dir: tempfile::TempDir,
}

fn demo(faults: &[&str], extra: &[&str]) -> Row {
    sibling_bin("example-app");
    sibling_bin("edge");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let mut args = vec![
        "demo",
        "--rate",
        "200",
        "--duration",
        "8s",
        "--workdir",
        work.to_str().unwrap(),
    ];
    for f in faults {
        args.extend(["--fault", f]);
    }
    args.extend_from_slice(extra);
    let out = run_migrator(&args, &[], Duration::from_secs(300));
    let report = read_report(&work.join("report.json"), &out);
    Row {
        out,
        report,
        _dir: dir,
    }
}

fn read_report(path: &Path, out: &Finished) -> MigrationReport {
    let bytes = std::fs::read(path).unwrap_or_else(|_| {
        panic!(
            "no report\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        )
    });
    serde_json::from_slice(&bytes).unwrap()
}

impl Row {
    /// What every row must show: the fault fired (and was injected),
    /// nothing acknowledged lost, the verdict and exit code agreeing.
    fn common(&self, fault: &str) -> &MigrationReport {
        let r = &self.report;
        assert!(
            r.faults
                .iter()
                .any(|f| f.fault.starts_with(fault) && f.injected),
            "fault {fault} not injected: {:?}\n{}",
            r.faults,
            self.out.stdout
        );
        assert!(
            self.out.stdout.contains("⚡ fault"),
            "the fault is in the progress output"
        );
        let rec = r
            .reconcile
            .as_ref()
            .unwrap_or_else(|| panic!("not reconciled: {:?}\n{}", r.reasons, self.out.stdout));
        assert_eq!(rec.lost, 0, "acknowledged orders lost: {:?}", rec.ids.lost);
        assert_eq!((rec.unexpected, rec.duplicated), (0, 0), "{rec:?}");
        assert_eq!(
            self.out.code,
            if r.passed { 0 } else { 1 },
            "{:?}\n{}",
            r.reasons,
            self.out.stdout
        );
        r
    }

    fn failed(&self) -> u64 {
        self.report
            .feeder
            .as_ref()
            .map_or(0, |f| f.rejected + f.indeterminate)
    }

    fn step(&self, name: &str) -> Option<StepOutcome> {
        self.report
            .steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.outcome)
    }
}

#[test]
fn kill_a_during_the_drain_keeps_traffic_on_b_and_loses_nothing() {
    let row = demo(&["drain_a:kill-a"], &[]);
    let r = row.common("kill-a");
    // Requests the edge still routed to A in the propagation window fail:
    // the verdict counts them; the run does not roll back to a dead A.
    assert!(r.rollback.is_none(), "{:?}", r.rollback);
    assert_eq!(r.passed, row.failed() == 0, "{:?}", r.reasons);
    assert!(r.reconcile.as_ref().unwrap().ok > 0);
}

#[test]
fn kill_b_after_the_flip_flips_back_to_a() {
    let row = demo(&["after:flip:kill-b"], &[]);
    let r = row.common("kill-b");
    assert!(!r.passed);
    let rb = r.rollback.as_deref().unwrap_or("");
    assert!(rb.contains("traffic sent back to A"), "{rb}");
    assert_eq!(row.step("rollback"), Some(StepOutcome::Ok));
}

#[test]
fn a_store_restart_during_converge_loses_nothing() {
    let row = demo(&["converge:restart-store:1500ms"], &[]);
    let r = row.common("restart-store");
    assert_eq!(
        row.step("converge"),
        Some(StepOutcome::Ok),
        "{:?}",
        r.reasons
    );
}

#[test]
fn a_store_restart_during_the_flip_loses_nothing() {
    let row = demo(&["flip:restart-store:1500ms"], &[]);
    let r = row.common("restart-store");
    assert_eq!(row.step("flip"), Some(StepOutcome::Ok), "{:?}", r.reasons);
}

#[test]
fn a_store_restart_during_the_drain_loses_nothing() {
    let row = demo(&["drain_a:restart-store:1500ms"], &[]);
    row.common("restart-store");
}

/// A demo on a PostgreSQL cluster of its own, restarted by `fault`.
fn demo_on_postgres(fault: &str) -> Row {
    let pg = Pg::start_owned();
    let stop = format!("{} stop {}", pg_sh().display(), pg.data().display());
    let start = format!("{} start {}", pg_sh().display(), pg.data().display());
    demo(
        &[fault],
        &[
            "--store",
            &pg.url,
            "--store-stop",
            &stop,
            "--store-start",
            &start,
        ],
    )
}

#[test]
fn a_postgres_restart_during_converge_loses_nothing() {
    let row = demo_on_postgres("converge:restart-store:2s");
    let r = row.common("restart-store");
    assert_eq!(
        row.step("converge"),
        Some(StepOutcome::Ok),
        "{:?}",
        r.reasons
    );
}

#[test]
fn a_postgres_restart_during_the_flip_loses_nothing() {
    let row = demo_on_postgres("flip:restart-store:2s");
    let r = row.common("restart-store");
    assert_eq!(row.step("flip"), Some(StepOutcome::Ok), "{:?}", r.reasons);
}

#[test]
fn a_postgres_restart_during_the_drain_loses_nothing() {
    demo_on_postgres("drain_a:restart-store:2s").common("restart-store");
}

#[test]
fn api_429s_during_the_flip_are_retried_and_pass() {
    let row = demo(&["flip:api-429:5"], &[]);
    let r = row.common("api-429");
    assert!(r.passed, "{:?}", r.reasons);
    let flip = r.steps.iter().find(|s| s.name == "flip").unwrap();
    assert!(
        flip.detail.as_deref().unwrap_or("").contains("429"),
        "{:?}",
        flip.detail
    );
}

#[test]
fn api_503s_during_the_flip_are_retried_and_pass() {
    let row = demo(&["flip:api-5xx:5"], &[]);
    let r = row.common("api-5xx");
    assert!(r.passed, "{:?}", r.reasons);
}

#[test]
fn b_unhealthy_after_its_start_is_rolled_back_before_the_flip() {
    let row = demo(
        &["after:start_b:b-unhealthy"],
        &["--set", "timeouts.converge=4s"],
    );
    let r = row.common("b-unhealthy");
    assert!(!r.passed);
    assert!(
        r.rollback
            .as_deref()
            .unwrap_or("")
            .contains("B did not converge"),
        "{:?}",
        r.rollback
    );
    assert_eq!(row.step("flip"), None, "no flip");
    assert_eq!(row.failed(), 0, "A kept serving: nothing failed");
}

#[test]
fn b_that_stops_applying_is_rolled_back_before_the_flip() {
    let row = demo(&["converge:b-lag"], &["--set", "timeouts.converge=4s"]);
    let r = row.common("b-lag");
    assert!(!r.passed);
    assert_eq!(row.step("converge"), Some(StepOutcome::Failed));
    assert_eq!(row.step("flip"), None, "no flip");
    assert_eq!(row.failed(), 0, "A kept serving: nothing failed");
}

#[test]
fn a_switch_that_hangs_fails_the_flip_and_leaves_traffic_on_a() {
    let row = demo(&["flip:api-timeout"], &["--set", "timeouts.flip=3s"]);
    let r = row.common("api-timeout");
    assert!(!r.passed);
    assert_eq!(row.step("flip"), Some(StepOutcome::Failed));
    // The record was read back after the failed flip: unchanged, so this is
    // a rollback before the flip (B stopped), not a half-done switch.
    let rb = r.rollback.as_deref().unwrap_or("");
    assert!(
        rb.contains("flip failed") && rb.contains("traffic stays on A"),
        "{rb}"
    );
    assert_eq!(row.failed(), 0, "A kept serving: nothing failed");
}

#[test]
fn latency_on_b_below_the_timeout_only_slows_the_run() {
    let row = demo(&["after:flip:origin-latency:300"], &[]);
    let r = row.common("origin-latency");
    assert!(r.passed, "{:?}", r.reasons);
    let f = r.feeder.as_ref().unwrap();
    assert!(f.latency_ms.max >= 300.0, "the latency was added: {f:?}");
}

#[test]
fn latency_on_b_beyond_the_timeout_trips_the_watch_and_rolls_back() {
    let row = demo(&["after:flip:origin-latency:3000"], &[]);
    let r = row.common("origin-latency");
    assert!(!r.passed);
    let rb = r.rollback.as_deref().unwrap_or("");
    assert!(
        rb.contains("failed after the flip") && rb.contains("traffic sent back to A"),
        "{rb}"
    );
}
