//! `migrator run` against the real edge and example-app: every refusal stops
//! at preflight with exit 2 and changes nothing; every rollback path ends with
//! traffic on A and exit 1; API faults are retried.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

fn b_addr(stage: &Stage) -> std::net::SocketAddr {
    format!("127.0.0.3:{}", stage.port).parse().unwrap()
}

#[test]
fn refuses_when_the_record_no_longer_points_at_a() {
    let stage = Stage::start("");
    stage.move_record("127.0.0.2", "127.0.0.9");
    let out = stage.run_plan(&stage.plan(), &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("traffic goes to 127.0.0.9, not to A (127.0.0.2)"),
        "{}",
        out.stderr
    );
    assert!(!answers(b_addr(&stage)), "B must not have been started");
    assert_eq!(stage.record(), "127.0.0.9", "nothing changed");
}

#[test]
fn refuses_a_bad_token_and_never_prints_it() {
    let stage = Stage::start("");
    let bad = "wrong-token-do-not-print";
    let out = stage.run_plan_env(
        &stage.plan(),
        &[],
        &[("CLOUDFLARE_API_TOKEN", bad.to_string())],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("token was refused"), "{}", out.stderr);
    assert!(!out.stdout.contains(bad) && !out.stderr.contains(bad));
    assert!(!answers(b_addr(&stage)));
    assert_eq!(stage.record(), "127.0.0.2");
}

/// A token with Zone:Read but no DNS:Edit passes token verification and
/// reads the record; preflight proves the edit right and refuses before B
/// is started.
#[test]
fn refuses_a_token_that_may_only_read() {
    let ro = "read-only-token-do-not-print";
    let stage = Stage::start(&format!("read_only_tokens = [\"{ro}\"]"));
    let out = stage.run_plan_env(
        &stage.plan(),
        &[],
        &[("CLOUDFLARE_API_TOKEN", ro.to_string())],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("not edit it") && out.stderr.contains("DNS:Edit"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains(ro) && !out.stderr.contains(ro));
    assert!(!answers(b_addr(&stage)), "B must not have been started");
    assert_eq!(stage.record(), "127.0.0.2");
}

/// `migrator preflight` changes nothing; a host-check warning is printed
/// with its fix, and `--strict` turns it into a refusal.
#[test]
fn preflight_warns_and_strict_refuses_on_a_host_warning() {
    let stage = Stage::start("");
    let mut plan = stage.plan();
    plan.host_checks.enabled = true;
    // More connections than any open-file limit allows: a warning, not fatal.
    plan.feeder.connections = Some(50_000_000);
    let out = stage.run_plan(&plan, &["--dry-run"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("open files (feeder)") && all.contains("ulimit -n"),
        "{all}"
    );
    let path = stage.write_plan(&plan);
    let args = ["preflight", "--plan", path.to_str().unwrap(), "--strict"];
    let strict = common::run_with_env(&args, &stage.env(), Duration::from_secs(60));
    assert_eq!(strict.code, 2, "{}\n{}", strict.stdout, strict.stderr);
    assert!(strict.stderr.contains("--strict"), "{}", strict.stderr);
    assert!(!answers(b_addr(&stage)), "B must not have been started");
    assert_eq!(stage.record(), "127.0.0.2");
}

#[test]
fn refuses_a_missing_token() {
    let stage = Stage::start("");
    let out = stage.run_plan_env(&stage.plan(), &[], &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("CLOUDFLARE_API_TOKEN is not set"),
        "{}",
        out.stderr
    );
}

#[test]
fn refuses_when_b_is_already_serving() {
    let stage = Stage::start("");
    let _b = start_app(
        "127.0.0.3",
        stage.port,
        &stage.store,
        "b-early",
        &stage.dir.path().join("b-early.log"),
    );
    let out = stage.run_plan(&stage.plan(), &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is already serving"), "{}", out.stderr);
    assert_eq!(stage.record(), "127.0.0.2");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let stage = Stage::start("");
    let out = stage.run_plan(&stage.plan(), &["--dry-run"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("--- plan ---"), "{}", out.stdout);
    assert!(out.stdout.contains("nothing was started or changed"));
    assert!(!out.stdout.contains("start_b"), "{}", out.stdout);
    assert!(!answers(b_addr(&stage)));
    assert_eq!(stage.record(), "127.0.0.2");
    assert!(
        !stage.dir.path().join("acks.jsonl").exists(),
        "no load was sent"
    );
}

#[test]
fn bad_plans_exit_2_naming_the_problem() {
    let stage = Stage::start("");
    let good = stage.plan().to_toml();
    let cases: Vec<(String, &str)> = vec![
        (good.replace("[feeder]", "[feeder]\nspeed = 5"), "speed"),
        (good.replace("[budgets]", "[budget]"), "`budget`"),
        (good.replacen("address = \"127.0.0.3\"", "", 1), "address"),
        (
            good.replacen("url = \"http://127.0.0.3", "url = \"htp:/127.0.0.3", 1),
            "b.url",
        ),
        ("[a]\nurl = ".to_string(), "not valid TOML"),
    ];
    for (text, needle) in cases {
        let p = stage.dir.path().join("bad.toml");
        std::fs::write(&p, &text).unwrap();
        let out = run_with_env(
            &["run", "--plan", p.to_str().unwrap()],
            &stage.env(),
            RUN_TIMEOUT,
        );
        assert_eq!(out.code, 2, "{needle}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one message: {}",
            out.stderr
        );
    }
    // An unreachable origin: A's URL on a port where nothing listens.
    let mut plan = stage.plan();
    plan.a.url = url::Url::parse("http://127.0.0.2:1/").unwrap();
    let out = stage.run_plan(&plan, &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is not healthy"), "{}", out.stderr);
    assert!(!answers(b_addr(&stage)));
    assert_eq!(stage.record(), "127.0.0.2");
}

#[test]
fn b_never_healthy_is_stopped_and_traffic_stays_on_a() {
    let stage = Stage::start("");
    let mut plan = stage.plan();
    // A start command that runs but never serves.
    plan.b.start = Some("exec sleep 120".into());
    plan.timeouts.health = Duration::from_secs(3);
    let run = stage.migrate(&plan);
    let out = &run.out;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let r = run.report();
    assert!(!r.passed);
    let rb = r.rollback.as_deref().expect("rollback recorded");
    assert!(rb.contains("B did not start"), "{rb}");
    let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"rollback") && !names.contains(&"flip"),
        "{names:?}"
    );
    assert_eq!(stage.record(), "127.0.0.2", "the record stays on A");
    // Reconciled against A: nothing acknowledged was lost on the way.
    let rec = r.reconcile.expect("reconciled against A");
    assert_eq!(rec.lost, 0);
    assert!(rec.ok > 0);
}

#[test]
fn b_failing_after_the_flip_sends_traffic_back_to_a() {
    let stage = Stage::start("");
    let mut plan = stage.plan();
    let pid_file = stage.b_pid_file();
    plan.feeder.run_before_flip = Duration::from_secs(2);
    // Allow the failures B's crash causes; the watch on B's health decides.
    plan.watch.failed = Some(1_000_000);
    // Kill B as soon as the record points at it.
    let api_stage_token = stage.token.clone();
    let api = stage.api;
    let killer = std::thread::spawn(move || {
        let sw_plan = migrator::plan::CloudflarePlan {
            zone: migrator::demo::ZONE.into(),
            record: migrator::demo::RECORD.into(),
            api_base: url::Url::parse(&format!("http://{api}/client/v4/")).unwrap(),
        };
        let sw = migrator::switch::cloudflare::CloudflareSwitch::new(
            &sw_plan,
            migrator::switch::cloudflare::Token::new(api_stage_token),
            Duration::from_secs(10),
        )
        .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let flipped = eventually(Duration::from_secs(120), || {
            use migrator::switch::TrafficSwitch;
            rt.block_on(sw.current()).ok().as_deref() == Some("127.0.0.3")
        });
        if flipped {
            let pid: i32 = std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        flipped
    });
    let run = stage.migrate(&plan);
    let out = &run.out;
    assert!(
        killer.join().unwrap(),
        "the flip never happened: {}",
        out.stdout
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let r = run.report();
    let rb = r.rollback.as_deref().expect("rollback recorded");
    assert!(rb.contains("B failing after the flip"), "{rb}");
    assert!(rb.contains("traffic sent back to A"), "{rb}");
    assert_eq!(stage.record(), "127.0.0.2", "traffic is back on A");
    let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"flip") && names.contains(&"rollback"),
        "{names:?}"
    );
    assert!(!names.contains(&"stop_a"), "A must keep running: {names:?}");
    let a_addr = format!("127.0.0.2:{}", stage.port).parse().unwrap();
    assert!(answers(a_addr), "A still serves");
}

/// 429s armed in the edge from its start meet preflight's proof of
/// DNS:Edit (the record's content written back), which retries them like
/// any call; the flip itself then goes through (the flip's own 429s are a
/// row of the fault matrix, `migrator/tests/faults.rs`).
#[test]
fn api_429s_are_retried_and_the_run_passes() {
    let stage =
        Stage::start("\n[faults]\nstatus = 429\ncount = 2\nretry_after = 1\nmethod = \"PATCH\"\n");
    let run = stage.migrate(&stage.plan());
    let out = &run.out;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("prove DNS:Edit") && out.stderr.contains("429"),
        "the retries are logged: {}",
        out.stderr
    );
    let r = run.report();
    assert!(r.passed, "{:?}", r.reasons);
    assert_eq!(stage.record(), "127.0.0.3");
    let rec = r.reconcile.expect("reconcile");
    assert_eq!((rec.lost, rec.unexpected, rec.duplicated), (0, 0, 0));
}

#[test]
fn a_failing_start_command_rolls_back_at_once() {
    let stage = Stage::start("");
    let mut plan = stage.plan();
    plan.b.start = Some("echo 'no such image: shop:latest' >&2; exit 3".into());
    plan.timeouts.health = Duration::from_secs(120);
    let t0 = std::time::Instant::now();
    let run = stage.migrate(&plan);
    let out = &run.out;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "a dead start command must not wait for the health timeout"
    );
    let r = run.report();
    let rb = r.rollback.as_deref().expect("rollback recorded");
    assert!(rb.contains("start command exited"), "{rb}");
    assert_eq!(stage.record(), "127.0.0.2");
}

#[test]
fn an_external_feeder_is_reconciled_from_its_ack_log() {
    let stage = Stage::start("");
    let acks = stage.dir.path().join("external-acks.jsonl");
    let feeder_report = stage.dir.path().join("feeder.json");
    let target = format!("http://{}:{}/", migrator::demo::RECORD, stage.proxy.port());
    let mut cmd = std::process::Command::new(sibling_bin("feeder"));
    cmd.arg(&target)
        .arg("100")
        .arg("--duration")
        .arg("12s")
        .arg("--ack-log")
        .arg(&acks)
        .arg("--report")
        .arg(&feeder_report)
        .arg("--resolve")
        .arg(format!("{}={}", migrator::demo::RECORD, stage.proxy))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(stage.dir.path().join("feeder.out")).unwrap())
        .stderr(std::fs::File::create(stage.dir.path().join("feeder.err")).unwrap());
    let _feeder = Proc {
        child: cmd.spawn().expect("spawn feeder"),
        name: "feeder".into(),
    };
    assert!(
        eventually(Duration::from_secs(30), || acks.exists()),
        "the feeder never wrote its ack log"
    );
    let mut plan = stage.plan();
    plan.feeder.mode = migrator::plan::FeederMode::External;
    plan.feeder.target = None;
    plan.feeder.ack_log = Some(acks.clone());
    plan.feeder.report = Some(feeder_report.clone());
    let run = stage.migrate(&plan);
    let out = &run.out;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let r = run.report();
    let (lines, ok, _, _) = count_acks(&acks);
    let rec = r.reconcile.expect("reconcile");
    assert_eq!(rec.ok, ok, "every acknowledged order is on B");
    assert_eq!(rec.lost, 0);
    let f = r.feeder.expect("the external feeder's report is embedded");
    assert_eq!(f.sent, lines);
    assert!(f.instances.contains_key("b"), "{:?}", f.instances);
}

/// A `/health` that says healthy but forever far behind the head, served
/// until the process in `pid_file` is gone (so "stopped" can be confirmed).
fn lagging_health(pid_file: std::path::PathBuf) -> std::net::SocketAddr {
    use axum::routing::get;
    let (tx, rx) = std::sync::mpsc::channel();
    let pid_file_start = pid_file.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let health = handover_contract::Health::idle("b-lagging", 10, 100_000);
            let app = axum::Router::new().route(
                "/health",
                get(move || {
                    let h = health.clone();
                    async move { axum::Json(h) }
                }),
            );
            let gone = async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(170);
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let pid = std::fs::read_to_string(&pid_file)
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok());
                    if let Some(pid) = pid {
                        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                            .is_ok()
                            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                                .map(|s| s.contains(") Z "))
                                .unwrap_or(true);
                        if !alive {
                            break;
                        }
                    }
                    if std::time::Instant::now() > deadline {
                        break;
                    }
                }
            };
            // Not serving before B's start command ran (preflight must see B down).
            while !pid_file_start.exists() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            axum::serve(listener, app)
                .with_graceful_shutdown(gone)
                .await
                .unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap()
}

#[test]
fn b_that_never_converges_is_stopped_and_traffic_stays_on_a() {
    let stage = Stage::start("");
    let mut plan = stage.plan();
    let pid_file = stage.b_pid_file();
    let health = lagging_health(pid_file.clone());
    plan.b.start = Some(format!("echo $$ > {}; exec sleep 150", pid_file.display()));
    plan.b.health_url = Some(url::Url::parse(&format!("http://{health}/health")).unwrap());
    plan.timeouts.converge = Duration::from_secs(3);
    let run = stage.migrate(&plan);
    let out = &run.out;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let r = run.report();
    let rb = r.rollback.as_deref().expect("rollback recorded");
    assert!(rb.contains("B did not converge"), "{rb}");
    use migrator::report::StepOutcome;
    let steps: Vec<(&str, StepOutcome)> = r
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.outcome))
        .collect();
    assert!(
        steps.contains(&("converge", StepOutcome::Failed))
            && steps.contains(&("rollback", StepOutcome::Ok)),
        "{steps:?}"
    );
    assert_eq!(stage.record(), "127.0.0.2", "the record stays on A");
}

#[test]
fn usage_errors_exit_2() {
    let out = run_migrator(&["run"], &[], Duration::from_secs(30));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--plan"), "{}", out.stderr);
    let out = run_migrator(
        &["run", "--plan", "/nonexistent/plan.toml"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("/nonexistent/plan.toml"),
        "{}",
        out.stderr
    );
    let out = run_migrator(&["run", "--frobnicate"], &[], Duration::from_secs(30));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run_migrator(&["--help"], &[], Duration::from_secs(30));
    assert_eq!(out.code, 0);
    for sub in ["run", "demo", "reconcile"] {
        assert!(out.stdout.contains(sub), "{}", out.stdout);
    }
}
