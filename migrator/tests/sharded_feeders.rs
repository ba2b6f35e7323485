//! Load from several machines: three `feeder --shard I/3` processes share
//! one run id and one schedule; `migrator run` with `feeder.ack_logs` and
//! `feeder.reports` merges their reports and reconciles their logs once.
//! Together they are what one feeder at the summed rate would be: the same
//! order ids (each once), the same count, the summed rates.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

const RATE: u64 = 150;
const SECS: u64 = 12;
const SHARDS: u64 = 3;
const RUN: &str = "shard-test";

#[test]
fn three_sharded_feeders_drive_one_migration_as_one_feeder_would() {
    let stage = Stage::start("");
    let target = format!("http://{}:{}/", migrator::demo::RECORD, stage.proxy.port());
    let dir = stage.dir.path();
    let mut feeders = Vec::new();
    let (mut logs, mut reports) = (Vec::new(), Vec::new());
    for i in 1..=SHARDS {
        let (log, report) = (
            dir.join(format!("acks-{i}.jsonl")),
            dir.join(format!("feeder-{i}.json")),
        );
        let mut cmd = std::process::Command::new(sibling_bin("feeder"));
        cmd.arg(&target)
            .arg(RATE.to_string())
            .args(["--duration", &format!("{SECS}s"), "--run-id", RUN])
            .args(["--shard", &format!("{i}/{SHARDS}")])
            .arg("--ack-log")
            .arg(&log)
            .arg("--report")
            .arg(&report)
            .arg("--resolve")
            .arg(format!("{}={}", migrator::demo::RECORD, stage.proxy))
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("feeder-{i}.out"))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("feeder-{i}.err"))).unwrap());
        feeders.push(Proc {
            child: cmd.spawn().expect("spawn feeder"),
            name: format!("feeder {i}/{SHARDS}"),
        });
        logs.push(log);
        reports.push(report);
    }
    assert!(
        eventually(Duration::from_secs(30), || logs.iter().all(|l| l.exists())),
        "a feeder never wrote its ack log"
    );
    let mut plan = stage.plan();
    plan.feeder.mode = migrator::plan::FeederMode::External;
    plan.feeder.target = None;
    plan.feeder.ack_log = None;
    plan.feeder.ack_logs = logs.clone();
    plan.feeder.reports = reports.clone();
    let run = stage.migrate(&plan);
    let out = &run.out;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let r = run.report();

    // The ids one feeder at RATE for SECS sends: each exactly once.
    let mut ids = BTreeSet::new();
    let mut ok = 0;
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let ack: handover_contract::AckRecord = serde_json::from_str(line).unwrap();
            ok += u64::from(ack.outcome == handover_contract::Outcome::Ok);
            assert!(ids.insert(ack.id.clone()), "{} sent twice", ack.id);
        }
    }
    let want: BTreeSet<String> = (0..RATE * SECS)
        .map(|seq| feeder::workload::order_id(RUN, seq))
        .collect();
    assert!(ids == want, "the shards' ids are not one feeder's");

    let rec = r.reconcile.expect("reconciled");
    assert_eq!((rec.ok, rec.lost), (ok, 0), "{rec:?}");
    let f = r.feeder.expect("the merged report is embedded");
    assert_eq!(f.sent, RATE * SECS);
    assert_eq!(f.target_rate, RATE as f64, "target rates add up");
    assert!(
        (f.achieved_rate - RATE as f64).abs() < RATE as f64 * 0.05,
        "achieved {} of {RATE}/s",
        f.achieved_rate
    );
    // Histograms merged, not averaged: the whole holds every shard's samples.
    let hist = |r: &handover_contract::FeederReport| {
        feeder::histogram::decode(r.latency_histogram.as_deref().unwrap()).unwrap()
    };
    let shards: u64 = reports
        .iter()
        .map(|p| hist(&feeder::merge::read(p).unwrap()).len())
        .sum();
    assert_eq!(hist(&f).len(), shards);
    assert!(f.instances.contains_key("b"), "{:?}", f.instances);
}
