//! Integration tests: the feeder against a scripted local server, through the
//! library and through the real binary.

#![allow(clippy::unwrap_used)]

mod any_service;
mod live_view;
mod util;

use feeder::{Options, Progress, UserSource, Workload};
use handover_contract::{AckRecord, Outcome};
use std::collections::HashSet;
use std::time::Duration;
use util::{read_report, run_feeder, run_reported, run_with_report, serve, Reply};

fn opts(url: &str, rate: f64, duration_ms: u64) -> Options {
    let mut o = Options::new(url.parse().unwrap(), rate);
    o.duration = Some(Duration::from_millis(duration_ms));
    o.progress = Progress::Off;
    o
}

fn read_acks(path: &std::path::Path) -> Vec<AckRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad ack line {l:?}: {e}")))
        .collect()
}

/// Polls until `f` holds or the deadline passes.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_rate_times_duration_within_one_percent() {
    let server = serve(|_| Reply::ok("a")).await;
    let report = feeder::start(opts(&server.url(), 200.0, 3_000))
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_within!(report.sent, 594, 606, "{report:#?}");
    assert_eq!(report.missed, 0);
    assert_eq!(report.ok, report.sent, "{report:#?}");
    // The rate over the real sending period (a late last send stretches it).
    assert_within!(report.achieved_rate, 194.0, 202.0, "{report:#?}");
    assert_eq!(server.count(), report.sent);
    assert_eq!(report.instances.get("a"), Some(&report.sent));
    let stats = report.rate_per_second.expect("per-second stats");
    assert_within!(stats.mean, 190.0, 210.0, "{report:#?}");
}

/// Coordinated omission: requests due while the server stalls are still sent
/// on schedule, and their latency counts from the due time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500ms_stall_shows_in_due_time_latency() {
    let stall = (Duration::from_millis(1_000), Duration::from_millis(1_500));
    let server = serve(move |c| {
        let r = Reply::ok("a");
        if c.elapsed >= stall.0 && c.elapsed < stall.1 {
            r.delay(stall.1 - c.elapsed)
        } else {
            r
        }
    })
    .await;
    let report = feeder::start(opts(&server.url(), 100.0, 3_000))
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(report.missed, 0, "{report:#?}");
    assert_eq!(report.sent, 300);
    assert_eq!(report.ok, 300, "{report:#?}");
    assert!(report.latency_ms.max >= 450.0, "{:#?}", report.latency_ms);
    assert!(report.latency_ms.p99 >= 350.0, "{:#?}", report.latency_ms);
    assert!(report.service_ms.p50 < 100.0, "{:#?}", report.service_ms);
    // The stall is the longest time without a success.
    assert_within!(report.max_gap_ms, 400.0, 1_000.0, "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_ack_log_and_order_content() {
    // By arrival: 0 → 201, 1 → 422, 2 → 503, 3 → no reply within the timeout.
    let server = serve(|c| match c.n % 4 {
        0 => Reply::ok("a"),
        1 => Reply::ok("a").status(422),
        2 => Reply::ok("a").status(503),
        _ => Reply::ok("a").delay(Duration::from_secs(3)),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acks.jsonl");
    let mut o = opts(&server.url(), 40.0, 1_000);
    o.timeout = Duration::from_millis(400);
    // The default cap (rate × (timeout + 1 s) = 56) could be hit on a loaded machine;
    // this test is about outcomes, not the cap.
    o.max_in_flight = Some(1_000);
    o.ack_log = Some(acks.clone());
    o.run_id = "t1".into();
    let report = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!(report.sent, 40, "{report:#?}");
    assert_eq!(
        (report.ok, report.rejected, report.indeterminate),
        (10, 10, 20),
        "{report:#?}"
    );

    let lines = read_acks(&acks);
    assert_eq!(
        lines.len() as u64,
        report.sent,
        "one ack line per order sent"
    );
    let ids: HashSet<_> = lines.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids.len(), lines.len(), "ids are unique");
    let received = server.seen.orders.lock().unwrap().clone();
    for a in &lines {
        assert!(
            a.id.starts_with("t1-") && a.id.len() == "t1-".len() + 10,
            "{a:?}"
        );
        match a.status {
            Some(201) => assert_eq!(a.outcome, Outcome::Ok),
            Some(422) => assert_eq!(a.outcome, Outcome::Rejected),
            Some(503) | None => assert_eq!(a.outcome, Outcome::Indeterminate),
            other => panic!("unexpected status {other:?}"),
        }
        if a.status.is_none() {
            assert!(
                a.latency_us >= 350_000,
                "a timeout takes the timeout: {a:?}"
            );
        }
        assert!(a.done_ns >= a.due_ns);
        let sent = received
            .get(&a.id)
            .unwrap_or_else(|| panic!("server never saw {}", a.id));
        assert_eq!(a.user_id.as_deref(), Some(sent.user_id.as_str()));
        assert_eq!(a.items_digest.as_deref(), Some(sent.digest.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_switch_gives_one_event_and_no_overlap() {
    let server = serve(|c| {
        if c.elapsed < Duration::from_millis(1_500) {
            Reply::ok("a")
        } else {
            Reply::ok("b")
        }
    })
    .await;
    let (out, r) = run_reported(&[&server.url(), "100", "--duration", "3s"]).await;
    out.assert_stdout_count("instance change:", 1);
    out.assert_stdout_has("instance change: a → b");
    out.assert_stdout_count("overlap ended:", 1);
    out.assert_stdout_has("result: failed = 0 succeeded = 300");
    let h = r.handover.clone().expect("handover");
    assert_eq!((h.from.as_str(), h.to.as_str()), ("a", "b"));
    // The server switches between two arrivals; on a loaded machine two
    // replies may still complete a few ms out of order.
    assert!(
        h.first_new_ns.abs_diff(h.last_old_ns) < 200_000_000,
        "{h:?}"
    );
    assert!(h.overlap_ms < 100.0, "{h:?}");
    assert!(h.window_p99_ms.is_some());
    assert_eq!(r.instances.values().sum::<u64>(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_instances_give_one_event_and_the_overlap() {
    // a alone until 1 s, a and b alternate until 2 s, then b alone.
    let server = serve(|c| {
        let ms = c.elapsed.as_millis();
        if ms < 1_000 || (ms < 2_000 && c.n % 2 == 1) {
            Reply::ok("a")
        } else {
            Reply::ok("b")
        }
    })
    .await;
    let (out, r) = run_reported(&[&server.url(), "100", "--duration", "3500ms"]).await;
    out.assert_stdout_count("instance change:", 1);
    out.assert_stdout_count("overlap ended:", 1);
    let h = r.handover.expect("handover");
    assert_within!(h.overlap_ms, 850.0, 1_050.0, "{h:?}");
    out.assert_stdout_has("a and b both answered for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_sums_counts_and_merges_histograms() {
    let server = serve(|_| Reply::ok("a")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, rate) in [("a.json", "50"), ("b.json", "30")] {
        let p = dir.path().join(name);
        run_with_report(
            &[&server.url(), rate, "--duration", "1s", "--progress", "off"],
            &p,
        )
        .await;
        paths.push(p);
    }
    let merged = dir.path().join("m.json");
    let out = run_with_report(
        &[
            "merge",
            paths[0].to_str().unwrap(),
            paths[1].to_str().unwrap(),
        ],
        &merged,
    )
    .await;
    out.assert_stdout_has("result: failed = 0 succeeded = 80");
    let m = read_report(&merged);
    assert_eq!((m.sent, m.ok), (80, 80));
    assert_eq!(m.target_rate, 80.0);
    let h = feeder::histogram::decode(m.latency_histogram.as_deref().unwrap()).unwrap();
    assert_eq!(h.len(), 80);

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = run_feeder(&["merge", bad.to_str().unwrap()], Duration::from_secs(30)).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("bad.json"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_exit_2_with_a_message() {
    let cases: &[&[&str]] = &[
        &["http://127.0.0.1:9/", "0"],
        &["http://127.0.0.1:9/", "-3"],
        &["http://127.0.0.1:9/", "NaN"],
        &["http://127.0.0.1:9/", "inf"],
        &["http://127.0.0.1:9/", "lots"],
        &["not-a-url", "10"],
        &["ftp://127.0.0.1/", "10"],
        &["http://127.0.0.1:9/", "10", "--duration", "forever"],
        &["http://127.0.0.1:9/", "10", "--timeout", "0s"],
        &["http://127.0.0.1:9/", "10", "--resolve", "nohost"],
        &[
            "http://127.0.0.1:9/",
            "10",
            "--run-id",
            "has space",
            "--duration",
            "1s",
        ],
        &[
            "http://127.0.0.1:9/",
            "10",
            "--probe",
            "no-slash",
            "--duration",
            "1s",
        ],
        &[
            "http://127.0.0.1:9/",
            "10",
            "--ack-log",
            "/nonexistent/dir/acks.jsonl",
            "--duration",
            "1s",
        ],
        &["http://127.0.0.1:9/"],
        &["--bogus"],
    ];
    for args in cases {
        let out = run_feeder(args, Duration::from_secs(30)).await;
        assert_eq!(
            out.code,
            Some(2),
            "{args:?}\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        assert!(!out.stderr.trim().is_empty(), "{args:?}: no message");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    let help = run_feeder(&["--help"], Duration::from_secs(30)).await;
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.contains("--ack-log"), "{}", help.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_connects_to_the_address_with_the_original_host() {
    let server = serve(|_| Reply::ok("edge")).await;
    let resolve = format!("shop.handover.test={}", server.addr);
    let out = run_feeder(
        &[
            "http://shop.handover.test:8080/",
            "20",
            "--duration",
            "1s",
            "--resolve",
            &resolve,
        ],
        Duration::from_secs(60),
    )
    .await;
    out.assert_code(0);
    out.assert_stdout_has("result: failed = 0 succeeded = 20");
    let hosts = server.seen.hosts.lock().unwrap().clone();
    assert_eq!(hosts.len(), 20);
    assert!(
        hosts.iter().all(|h| h == "shop.handover.test:8080"),
        "{hosts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_from_app_and_probe_mode() {
    let server = serve(|c| {
        if c.path == "/users" {
            Reply::ok("a")
                .status(200)
                .body(r#"[{"id":"x-1","name":"X","company_id":"c"},{"id":"x-2","name":"Y","company_id":"c"}]"#)
        } else {
            Reply::ok("a")
        }
    })
    .await;
    let mut o = opts(&server.url(), 50.0, 1_000);
    o.workload = Workload::Orders {
        users: UserSource::FromApp,
    };
    let r = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!(r.ok, 50);
    let users: HashSet<_> = server
        .seen
        .orders
        .lock()
        .unwrap()
        .values()
        .map(|o| o.user_id.clone())
        .collect();
    assert_eq!(users, HashSet::from(["x-1".to_string(), "x-2".to_string()]));

    let probe_server = serve(|_| Reply::ok("p").status(200)).await;
    let mut o = opts(&probe_server.url(), 20.0, 1_000);
    o.workload = Workload::Probe {
        path: "/health".into(),
    };
    let r = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!(r.ok, 20);
    let paths = probe_server.seen.paths.lock().unwrap().clone();
    assert!(paths.iter().all(|p| p == "/health"), "{paths:?}");
    assert!(probe_server.seen.orders.lock().unwrap().is_empty());

    // An app without users is a clear error before anything is sent.
    let empty = serve(|_| Reply::ok("a").status(200).body("[]")).await;
    let mut o = opts(&empty.url(), 10.0, 1_000);
    o.workload = Workload::Orders {
        users: UserSource::FromApp,
    };
    let err = feeder::start(o).await.err().expect("no users is an error");
    assert!(err.to_string().contains("no users"), "{err}");
    assert_eq!(empty.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_snapshot_and_stop() {
    let server = serve(|_| Reply::ok("a")).await;
    let mut o = opts(&server.url(), 200.0, 1_000);
    o.duration = None;
    let handle = feeder::start(o).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || handle.live().ok >= 50).await,
        "{:?}",
        handle.live()
    );
    let live = handle.live();
    assert_eq!(live.last_instance.as_deref(), Some("a"));
    assert!(live.last_ok_ns.is_some());
    handle.stop();
    let report = tokio::time::timeout(Duration::from_secs(20), handle.finish())
        .await
        .expect("finish after stop")
        .unwrap();
    assert!(
        report.sent >= live.sent && report.sent < live.sent + 400,
        "{report:#?}"
    );
    assert_eq!(report.ok, report.sent);
    assert!(server.count() == report.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_cap_counts_missed_slots() {
    // Every reply takes 1 s; with at most 5 in flight, most slots are missed.
    let server = serve(|_| Reply::ok("a").delay(Duration::from_secs(1))).await;
    let mut o = opts(&server.url(), 50.0, 1_000);
    o.max_in_flight = Some(5);
    let r = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!(r.sent, 5, "{r:#?}");
    assert_eq!(r.missed, 45, "{r:#?}");
    assert_eq!(r.ok, 5);
}

/// A stall longer than the timeout: every request waits its whole timeout,
/// so the default cap is full all the while, and a timeout the feeder ends
/// even a millisecond late would push a due slot over it. None is missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_longer_than_the_timeout_misses_no_slot() {
    let server = serve(|_| Reply::ok("a").delay(Duration::from_secs(10))).await;
    let mut o = opts(&server.url(), 200.0, 2_000);
    o.timeout = Duration::from_millis(500);
    // Few connections, a light test: the slots waiting for one are in
    // flight all the same, their timeout running from their release.
    o.connections = Some(8);
    let r = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!(r.missed, 0, "{r:#?}");
    assert_eq!(r.sent, 400, "{r:#?}");
    assert_eq!(r.indeterminate, 400, "{r:#?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_and_prints_the_summary() {
    let server = serve(|_| Reply::ok("a")).await;
    let mut child = util::feeder_cmd(&[&server.url(), "100"]).spawn().unwrap();
    let pid = child.id().expect("pid");
    let seen = server.seen.clone();
    assert!(
        eventually(Duration::from_secs(20), || seen
            .count
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 20)
        .await,
        "feeder never sent"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stdout = child.stdout.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("result: failed = 0 succeeded = "), "{text}");
}

/// The reqwest client (used for https) behaves like the default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_client_resolves_and_classifies_alike() {
    let server = serve(|c| {
        if c.n % 2 == 0 {
            Reply::ok("a")
        } else {
            Reply::ok("a").status(409)
        }
    })
    .await;
    let mut o = opts("http://shop.handover.test:8080/", 20.0, 1_000);
    o.resolve = vec![("shop.handover.test".into(), server.addr)];
    o.client = feeder::ClientKind::Reqwest;
    let r = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!((r.sent, r.ok, r.rejected), (20, 10, 10), "{r:#?}");
    let hosts = server.seen.hosts.lock().unwrap().clone();
    assert!(
        hosts.iter().all(|h| h == "shop.handover.test:8080"),
        "{hosts:?}"
    );
}

/// The first slots of a fast run find their connections open: before its
/// clock starts it dials what it keeps in flight at a 2 ms reply (10 at
/// 5,000/s). Grown from 4 as slots queued instead, each new worker dialled
/// while its slot waited: the first 50 ms of a 10,000/s demo had replies of
/// up to 42 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_dialled_before_the_first_request() {
    let server = serve(|_| Reply::ok("a")).await;
    let mut o = opts(&server.url(), 5_000.0, 200);
    o.workload = Workload::Probe {
        path: "/health".into(),
    };
    let r = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!((r.ok, r.missed), (r.sent, 0), "{r:#?}");
    let open = server
        .seen
        .connections_at_first_request
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(open >= 10, "{open} connections open at the first request");
}

/// A server that closes idle keep-alive connections: the feeder re-dials and
/// nothing is lost or reported as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_when_the_server_closes_idle_connections() {
    let server =
        util::serve_with_idle_close(|_| Reply::ok("a"), Some(Duration::from_millis(50))).await;
    let mut o = opts(&server.url(), 20.0, 2_000);
    o.connections = Some(2);
    let r = feeder::start(o).await.unwrap().finish().await.unwrap();
    assert_eq!((r.sent, r.ok, r.indeterminate), (40, 40, 0), "{r:#?}");
    assert_eq!(server.count(), 40);
}

/// Blind spot: a run whose requests failed or missed their slots exited 0,
/// and the classic `failed =` line left missed slots out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_missed_slots_fail_the_run_unless_allowed() {
    let refusing = serve(|_| Reply::ok("a").status(503)).await;
    let url = refusing.url();
    let args = [
        url.as_str(),
        "50",
        "--duration",
        "1s",
        "--progress",
        "off",
        "--user",
        "u-1",
    ];
    let out = run_feeder(&args, Duration::from_secs(60)).await;
    out.assert_code(1);
    out.assert_stdout_has("result: failed = 50 succeeded = 0");
    let mut allowed = args.to_vec();
    allowed.push("--allow-failures");
    run_feeder(&allowed, Duration::from_secs(60))
        .await
        .assert_code(0);
    // One request in flight at a time against a slow server: the other
    // slots are missed, and missed is failed.
    let slow = serve(|_| Reply::ok("a").delay(Duration::from_millis(300))).await;
    let url = slow.url();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = run_feeder(
        &[
            url.as_str(),
            "20",
            "--duration",
            "1s",
            "--progress",
            "off",
            "--user",
            "u-1",
            "--max-in-flight",
            "1",
            "--report",
            report.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .await;
    out.assert_code(1);
    let r = read_report(&report);
    assert!(r.missed > 0, "{r:?}");
    out.assert_stdout_has(&format!(
        "result: failed = {} succeeded = {}",
        r.rejected + r.indeterminate + r.missed,
        r.ok
    ));
}
