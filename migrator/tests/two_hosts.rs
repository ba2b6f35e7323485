//! The two-host cutover (issue 6): `scripts/two-hosts.sh` gives the store, A,
//! B, the edge and the client their own network namespaces and addresses, and
//! runs `migrator run` across them on PostgreSQL. Needs root and iproute2,
//! which CI has (`scripts/test.sh` installs iproute2 and PostgreSQL).

mod common;

use common::netns::{run_script, ScriptRun};

/// Runs `scripts/two-hosts.sh` with `args`: whether it exited 0, its
/// output, and the report.
fn two_hosts(args: &[&str]) -> Option<(bool, String, serde_json::Value)> {
    let ScriptRun {
        ok, output, report, ..
    } = run_script("two-hosts.sh", args, "TWO_HOSTS_REPORT")?;
    Some((ok, output, report))
}

#[test]
fn two_hosts_cutover_on_postgres_passes() {
    let Some((ok, out, report)) = two_hosts(&["--rate", "100"]) else {
        return;
    };
    assert!(ok, "two-hosts.sh failed:\n{out}");
    assert_eq!(report["passed"], true, "{report}");
    let rec = &report["reconcile"];
    assert_eq!(rec["lost"], 0, "{report}");
    assert_eq!(rec["unexpected"], 0, "{report}");
    assert_eq!(rec["duplicated"], 0, "{report}");
    let feeder = &report["feeder"];
    let instances = feeder["instances"].as_object().expect("instances");
    assert!(
        instances.contains_key("a") && instances.contains_key("b"),
        "both hosts must have answered: {instances:?}"
    );
    assert!(feeder["ok"].as_u64().unwrap_or(0) > 0, "{report}");
}

/// The nemesis's partition: after the flip, B's host cannot reach the store
/// for 2 s. B's health fails, the watch sends traffic back to A, and
/// nothing acknowledged is lost.
#[test]
fn b_cut_off_the_store_after_the_flip_goes_back_to_a_losing_nothing() {
    let Some((ok, out, report)) = two_hosts(&[
        "--rate",
        "100",
        "--fault",
        "after:flip:partition-b-store:2s",
    ]) else {
        return;
    };
    assert!(!ok, "a partitioned B must fail the run:\n{out}");
    let faults = report["faults"].as_array().expect("faults recorded");
    assert!(
        faults
            .iter()
            .any(|f| f["fault"] == "partition-b-store:2s" && f["injected"] == true),
        "{report}"
    );
    assert_eq!(report["reconcile"]["lost"], 0, "{report}");
    assert!(
        report["rollback"]
            .as_str()
            .unwrap_or("")
            .contains("traffic sent back to A"),
        "{report}"
    );
}
