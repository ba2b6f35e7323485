//! `migrator fleet` and `migrator demo --fleet` end to end: real edge, real
//! example-app hosts and hold-overs on loopback, each host move a whole
//! in-process run. Low rate and short runs: the three fleet demos take
//! about 10–20 s each on two cores.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A quick fleet demo's directory and flags.
struct Demo {
    dir: tempfile::TempDir,
}

impl Demo {
    fn new() -> Demo {
        sibling_bin("example-app");
        Demo {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn report_path(&self) -> std::path::PathBuf {
        self.dir.path().join("fleet.json")
    }

    /// `hosts` hosts on two hold-overs, low rate, short runs; then `extra`.
    fn args(&self, hosts: &str, extra: &[&str]) -> Vec<String> {
        let work = self.dir.path().join("work");
        let mut a: Vec<String> = [
            "demo",
            "--fleet",
            hosts,
            "--holdover",
            "2",
            "--rate",
            "20",
            "--duration",
            "2s",
            "--propagation",
            "200ms",
            "--idle-timeout",
            "200ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["--workdir".into(), work.to_string_lossy().into_owned()]);
        a.extend([
            "--report".into(),
            self.report_path().to_string_lossy().into_owned(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Runs the demo of three hosts with `extra`: its exit code and output,
    /// and the report.
    fn run(&self, extra: &[&str]) -> (Finished, Value) {
        let args = self.args("3", extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_migrator(&args, &[], Duration::from_secs(180));
        let report = read_report(&self.report_path());
        (out, report)
    }
}

fn read_report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn host<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no host {name} in {report:#}"))
}

/// Every run a host made reconciled with nothing lost or failed, and the
/// probes on its record all fleet long never saw it down.
fn assert_clean_runs(h: &Value) {
    assert_eq!(h["lost"], 0, "{h:#}");
    assert_eq!(h["failed"], 0, "{h:#}");
    assert_eq!(h["watch"]["failed"], 0, "{h:#}");
    assert!(h["watch"]["sent"].as_u64().unwrap() > 10, "{h:#}");
    for run in h["runs"].as_array().unwrap() {
        assert_eq!(run["reconcile"]["lost"], 0, "{run:#}");
        assert_eq!(run["passed"], true, "{run:#}");
    }
}

/// `GET /metrics` at `addr`, by hand (HTTP/1.0, the body).
fn scrape(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

#[test]
fn a_fleet_of_four_on_two_holdovers_is_maintained_in_two_batches_with_nothing_lost() {
    let demo = Demo::new();
    let out_path = demo.dir.path().join("stdout");
    let args = demo.args("4", &["--metrics", "127.0.0.1:0"]);
    let mut p = Proc {
        child: Command::new(migrator_bin())
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(demo.dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap(),
        name: "migrator".into(),
    };
    let stdout = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let mut addr = String::new();
    assert!(
        eventually(Duration::from_secs(60), || {
            addr = stdout()
                .lines()
                .find_map(|l| l.strip_prefix("fleet: metrics on http://"))
                .map(|a| a.trim_end_matches("/metrics").to_string())
                .unwrap_or_default();
            !addr.is_empty()
        }),
        "no metrics line:\n{}",
        stdout()
    );
    // While a host moves: it is in progress, its step named, batch 1.
    let mut seen = String::new();
    assert!(
        eventually(Duration::from_secs(60), || {
            seen = scrape(&addr).unwrap_or_default();
            seen.lines()
                .any(|l| l == r#"handover_fleet_hosts{state="in_progress"} 2"#)
        }),
        "never two hosts in progress:\n{seen}"
    );
    assert!(
        seen.lines().any(|l| l == "handover_fleet_batch 1"),
        "{seen}"
    );
    assert!(
        seen.contains(r#"handover_fleet_host_step{host="h3",step="waiting"} 1"#),
        "{seen}"
    );
    assert!(
        seen.lines().any(|l| l == "handover_fleet_orders_lost 0"),
        "{seen}"
    );
    let status = p
        .wait_timeout(Duration::from_secs(180))
        .expect("the fleet demo ends");
    assert!(status.success(), "fleet demo failed:\n{}", stdout());

    let r = read_report(&demo.report_path());
    assert_eq!(r["passed"], true, "{r:#}");
    assert_eq!(
        r["batches"],
        serde_json::json!([["h1", "h2"], ["h3", "h4"]])
    );
    for name in ["h1", "h2", "h3", "h4"] {
        let h = host(&r, name);
        assert_eq!(h["passed"], true, "{h:#}");
        assert_eq!(h["state"], "done");
        assert_eq!(h["attempts"], 1);
        assert_eq!(h["runs"].as_array().unwrap().len(), 2);
        let steps: Vec<&str> = h["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            ["to_holdover", "maintain", "verify", "back", "release"]
        );
        assert_clean_runs(h);
        // The events were printed as they happened.
        assert!(
            stdout().contains(&format!("fleet: {name} (127.0.1.")),
            "{}",
            stdout()
        );
    }
    // Every service the demo started is gone with it.
    let port: u16 = stdout()
        .split(" on port ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|p| p.parse().ok())
        .expect("the demo names its port");
    for ip in [
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.3",
        "127.0.2.1",
        "127.0.2.2",
    ] {
        let addr = format!("{ip}:{port}").parse().unwrap();
        assert!(!answers(addr), "{addr} still answers after the demo");
    }
    assert!(
        scrape(&addr).is_none(),
        "the metrics endpoint outlived the fleet"
    );
}

#[test]
fn a_host_that_never_verifies_stays_on_its_holdover_and_the_fleet_goes_on() {
    let (out, r) = Demo::new().run(&["--fail-host", "h1"]);
    assert_eq!(
        out.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(r["passed"], false);
    let reasons = r["reasons"].to_string();
    assert!(
        reasons.contains("host h1") && reasons.contains("verify failed 3 times"),
        "{reasons}"
    );
    let h1 = host(&r, "h1");
    assert_eq!(h1["state"], "on_holdover", "{h1:#}");
    assert_eq!(h1["attempts"], 3);
    // Only the run out: the service stayed on the hold-over, nothing lost.
    assert_eq!(h1["runs"].as_array().unwrap().len(), 1);
    assert_clean_runs(h1);
    for name in ["h2", "h3"] {
        let h = host(&r, name);
        assert_eq!(h["state"], "done", "{h:#}");
        assert_clean_runs(h);
        // h1's hold-over is never handed out again.
        assert_ne!(h["holdover"], h1["holdover"]);
    }
    assert!(out.stdout.contains("on_holdover"), "{}", out.stdout);
}

#[test]
fn more_failed_hosts_than_allowed_stop_the_fleet_after_the_hosts_in_progress() {
    let (out, r) = Demo::new().run(&["--fail-host", "h1", "--set", "fleet.max_failed_hosts=0"]);
    assert_eq!(
        out.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        r["stopped"]
            .as_str()
            .unwrap()
            .contains("max_failed_hosts = 0"),
        "{r:#}"
    );
    assert!(
        r["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("fleet stopped"),
        "{r:#}"
    );
    assert_eq!(host(&r, "h1")["state"], "on_holdover");
    // h2 was in progress with h1: it finished, back on its host.
    assert_eq!(host(&r, "h2")["state"], "done");
    assert_clean_runs(host(&r, "h2"));
    // h3 never started: its service never moved.
    let h3 = host(&r, "h3");
    assert_eq!(h3["state"], "skipped", "{h3:#}");
    assert!(h3["runs"].is_null() || h3["runs"].as_array().unwrap().is_empty());
    assert_eq!(r["batches"], serde_json::json!([["h1", "h2"]]));
}

const PLAN: &str = r#"
[fleet]
hosts = ["10.9.0.1", "10.9.0.2", "10.9.0.3"]
holdover = ["10.9.0.91", "10.9.0.92"]
batch = 2
jitter = "20s"

[fleet.host]
url = "http://{address}:8080/"
start = "touch STARTED; ssh root@{address} start {name}"
stop = "touch STARTED; ssh root@{address} stop {name}"
maintain = "touch STARTED; ssh root@{host} reboot"
verify = "touch STARTED; ssh root@{host} system-check"

[switch]
kind = "cloudflare"
zone = "example.com"
record = "{name}.example.com"
api_base = "http://127.0.0.1:9/client/v4/"

[feeder]
target = "https://{name}.example.com/"
"#;

#[test]
fn a_dry_run_prints_batches_and_commands_and_replays_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let plan = dir.path().join("fleet.toml");
    std::fs::write(&plan, PLAN.replace("STARTED", marker.to_str().unwrap())).unwrap();
    let args = [
        "fleet",
        "--plan",
        plan.to_str().unwrap(),
        "--dry-run",
        "--workdir",
        dir.path().to_str().unwrap(),
    ];
    let first = run_migrator(&args, &[], Duration::from_secs(30));
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let seed = first
        .stdout
        .split("--seed ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_string();
    let mut again: Vec<&str> = args.to_vec();
    again.extend(["--seed", &seed]);
    let second = run_migrator(&again, &[], Duration::from_secs(30));
    assert_eq!(
        first.stdout, second.stdout,
        "the same seed draws the same jitter"
    );
    for needle in [
        "batch 1",
        "batch 2",
        "start B: touch",
        "root@10.9.0.92 start 10-9-0-2",
        "ssh root@10.9.0.3 system-check",
    ] {
        assert!(
            first.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            first.stdout
        );
    }
    assert!(!marker.exists(), "a dry run ran a command");
}

#[test]
fn bad_fleet_plans_exit_2_naming_the_key_and_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let good = PLAN.replace("STARTED", marker.to_str().unwrap());
    for (bad, key) in [
        (good.replace("batch = 2", "batch = 3"), "fleet.batch"),
        (
            good.replace("system-check", "system-check {hots}"),
            "fleet.host.verify",
        ),
        (
            good.replace(
                r#"hosts = ["10.9.0.1", "10.9.0.2", "10.9.0.3"]"#,
                "hosts = []",
            ),
            "fleet.hosts",
        ),
        (
            good.replace("jitter = \"20s\"", "jitter = \"soon\""),
            "`fleet`",
        ),
    ] {
        let plan = dir.path().join("fleet.toml");
        std::fs::write(&plan, &bad).unwrap();
        let out = run_migrator(
            &["fleet", "--plan", plan.to_str().unwrap()],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, 2, "{key}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(key), "{key} not named:\n{}", out.stderr);
    }
    let out = run_migrator(
        &["demo", "--fleet", "3", "--fail-host", "h9"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--fail-host"), "{}", out.stderr);
    assert!(!marker.exists(), "a bad plan ran a command");
}
