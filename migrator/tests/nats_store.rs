//! `migrator demo --store nats://…` on a 3-node JetStream cluster (R3
//! stream) whose stream leader goes down while B converges and comes back
//! 2 s later: nothing acknowledged is lost and the verdict passes, within
//! the failure budget each way of going down costs.
//!
//! SIGTERM: nats-server hands the leadership of its streams over as it
//! shuts down. Publishes in flight to it are never acked: their requests
//! fail after the writer's 1 s ack wait (0 to 2 of them at 200/s in our
//! runs, a gap of up to 1.03 s), hence `budgets.failed = 10`.
//! `kill -9`: see the second test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use migrator::report::MigrationReport;

/// Three `nats-server`s started by `scripts/nats.sh cluster`, stopped (by
/// pid, by the script) when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
}

fn nats_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats.sh")
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(nats_sh())
            .arg("cluster")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/nats.sh cluster: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Cluster { dir, url }
    }

    /// The shell command that runs `scripts/nats.sh ACTION DIR ARG`.
    fn command(&self, action: &str, arg: &str) -> String {
        format!(
            "{} {action} {} {arg}",
            nats_sh().display(),
            self.dir.path().display()
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(nats_sh())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// `migrator demo` at 200/s for 8 s on a fresh 3-node cluster, the stream
/// leader taken down by `scripts/nats.sh HOW DIR leader:DEMO` for 2 s while
/// B converges, with `budgets` (`--set` values). Checks what every such run
/// must show and returns the report.
fn demo_losing_the_leader(how: &str, budgets: &[&str]) -> MigrationReport {
    sibling_bin("example-app");
    sibling_bin("edge");
    let cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let store = format!("{}/DEMO", cluster.url);
    let (stop, start) = (
        cluster.command(how, "leader:DEMO"),
        cluster.command("restart", "all"),
    );
    let mut args = vec![
        "demo",
        "--rate",
        "200",
        "--duration",
        "8s",
        "--workdir",
        work.path().to_str().unwrap(),
        "--store",
        &store,
        "--fault",
        "converge:restart-store:2s",
        "--store-stop",
        &stop,
        "--store-start",
        &start,
    ];
    for b in budgets {
        args.extend(["--set", b]);
    }
    let out = run_migrator(&args, &[], Duration::from_secs(300));
    let report: MigrationReport = serde_json::from_slice(
        &std::fs::read(work.path().join("report.json"))
            .unwrap_or_else(|_| panic!("no report\n{}\n{}", out.stdout, out.stderr)),
    )
    .unwrap();
    let password = cluster
        .url
        .split_once("handover:")
        .and_then(|(_, r)| r.split_once('@'))
        .unwrap()
        .0;
    assert!(
        !out.stdout.contains(password) && !out.stderr.contains(password),
        "the store password was printed"
    );
    assert!(
        report
            .faults
            .iter()
            .any(|f| f.fault.starts_with("restart-store") && f.injected),
        "{:?}\n{}",
        report.faults,
        out.stdout
    );
    let rec = report
        .reconcile
        .as_ref()
        .unwrap_or_else(|| panic!("not reconciled: {:?}\n{}", report.reasons, out.stdout));
    assert_eq!(rec.lost, 0, "acknowledged orders lost: {:?}", rec.ids.lost);
    assert_eq!((rec.unexpected, rec.duplicated), (0, 0), "{rec:?}");
    assert!(report.passed, "{:?}\n{}", report.reasons, out.stdout);
    assert_eq!(out.code, 0);
    report
}

#[test]
fn demo_on_a_nats_cluster_restarts_the_stream_leader_and_loses_no_order() {
    demo_losing_the_leader("stop", &["budgets.failed=10"]);
}

/// `kill -9`: no leader until the two others elect one, 4 to 9 s (raft
/// election timeouts of nats-server 2.9), during which appends fail at
/// once ("no stream found"); a split vote starts another 4 to 9 s round.
/// Measured: gaps of 4.8 to 8.3 s, at most 1 s longer than the time
/// without a leader. The budget is two rounds and the feeder's 2 s timeout:
/// 200/s × 20 s. (Before the follower woke on a commit, replies waited up
/// to 2 s more for it after the election; with an 11 s budget this failed
/// all three tries of one CI run.)
#[test]
fn demo_on_a_nats_cluster_survives_kill_9_of_the_stream_leader() {
    let r = demo_losing_the_leader("kill", &["budgets.failed=4000", "budgets.max_gap_ms=20000"]);
    let f = r.feeder.expect("feeder report");
    assert!(
        f.rejected + f.indeterminate > 0,
        "a kill -9 of the leader costs requests"
    );
}
