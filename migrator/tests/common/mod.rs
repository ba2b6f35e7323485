//! Helpers for the migrator's integration tests: the real binaries (built by
//! `cargo build --bins` into the same target dir), child processes that are
//! killed by pid when a test ends (also when it fails), and the stage (edge +
//! example-app A) that `migrator run` tests migrate away from.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod netns;
pub mod pg;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub fn migrator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_migrator"))
}

/// `example-app` or `edge`, next to the migrator executable.
pub fn sibling_bin(name: &str) -> PathBuf {
    let p = migrator_bin().parent().expect("bin dir").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --bins` (same CARGO_TARGET_DIR) before these tests",
        p.display()
    );
    p
}

/// A child process ended by pid when dropped: SIGTERM, a grace period, SIGKILL.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exit, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        if self.wait_timeout(Duration::from_secs(20)).is_none() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Spawns a server and reads its one JSON `listening` line.
pub fn spawn_server(mut cmd: Command, name: &str, log: &Path) -> (Proc, serde_json::Value) {
    let log_file = std::fs::File::create(log).expect("log file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc {
        child,
        name: name.to_string(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{name} printed no listening line; see {}", log.display()));
    let v: serde_json::Value = serde_json::from_str(&line).expect("listening json");
    assert_eq!(v["event"], "listening", "{line}");
    (proc, v)
}

/// Output of a finished migrator run.
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the migrator with `args` (bounded by `timeout`), killing it on panic.
pub fn run_migrator(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Finished {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(migrator_bin());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut p = Proc {
        child: cmd.spawn().expect("spawn migrator"),
        name: "migrator".into(),
    };
    let status = p.wait_timeout(timeout);
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        drop(p);
        panic!("migrator {args:?} did not finish within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    Finished {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Is anything answering HTTP at `url`'s host:port?
pub fn answers(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Polls `f` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Counts ack-log lines per outcome: (total, ok, rejected, indeterminate).
pub fn count_acks(path: &Path) -> (u64, u64, u64, u64) {
    let text = std::fs::read_to_string(path).expect("ack log");
    let mut c = (0, 0, 0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rec: handover_contract::AckRecord = serde_json::from_str(line).expect("ack line");
        c.0 += 1;
        match rec.outcome {
            handover_contract::Outcome::Ok => c.1 += 1,
            handover_contract::Outcome::Rejected => c.2 += 1,
            handover_contract::Outcome::Indeterminate => c.3 += 1,
        }
    }
    c
}

/// The stage `migrator run` tests migrate from: the edge (record
/// `shop.handover.test` → A) and example-app A on a fresh SQLite store.
pub struct Stage {
    pub dir: tempfile::TempDir,
    pub edge: Proc,
    pub a: Proc,
    pub api: SocketAddr,
    pub proxy: SocketAddr,
    pub port: u16,
    pub token: String,
    pub store: String,
}

pub const EDGE_TOKEN_ENV: &str = "HANDOVER_DEMO_EDGE_TOKEN";
/// The test edges' admin token (the nemesis arms faults with it).
pub const EDGE_ADMIN_TOKEN: &str = "test-admin-token";

impl Drop for Stage {
    /// Ends B if a run left it serving (A and the edge end with their `Proc`).
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(self.b_pid_file())
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        let pid = Pid::from_raw(pid);
        if kill(pid, Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && kill(pid, None).is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

impl Stage {
    /// `edge_extra` goes into the edge's config (a `[faults]` table, or
    /// top-level keys such as `read_only_tokens`).
    pub fn start(edge_extra: &str) -> Stage {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = migrator::demo::shared_free_port().expect("port");
        let edge = start_edge(dir.path(), port, edge_extra);
        let store = format!("sqlite:{}", dir.path().join("events.db").display());
        let a = start_app("127.0.0.2", port, &store, "a", &dir.path().join("a.log"));
        Stage {
            dir,
            edge: edge.proc,
            a,
            api: edge.api,
            proxy: edge.proxy,
            port,
            token: edge.token,
            store,
        }
    }

    /// The demo's plan for this stage, with short waits.
    pub fn plan(&self) -> migrator::plan::Plan {
        let app = sibling_bin("example-app");
        let mut plan = migrator::demo::demo_plan(migrator::demo::DemoStage {
            rate: 100.0,
            duration: Duration::from_secs(4),
            port: self.port,
            api: self.api,
            proxy: self.proxy,
            app: &app,
            store: &self.store,
            a_pid: self.a.pid(),
            workdir: self.dir.path(),
            propagation: Duration::from_millis(500),
            idle_timeout: Duration::ZERO,
            faults: &[],
            store_stop: None,
            store_start: None,
        })
        .expect("plan");
        plan.host_checks.enabled = false;
        // B outlives a successful `migrator run`: record its pid so the stage ends it.
        let start = plan.b.start.take().expect("b.start");
        plan.b.start = Some(format!(
            "echo $$ > {}; {start}",
            self.b_pid_file().display()
        ));
        plan
    }

    /// Where B's start command writes its pid.
    pub fn b_pid_file(&self) -> PathBuf {
        self.dir.path().join("b.pid")
    }

    pub fn write_plan(&self, plan: &migrator::plan::Plan) -> PathBuf {
        let p = self.dir.path().join("plan.toml");
        std::fs::write(&p, plan.to_toml()).expect("plan.toml");
        p
    }

    fn switch(&self) -> migrator::switch::cloudflare::CloudflareSwitch {
        cloudflare_switch(self.api, &self.token)
    }

    /// Where the record points now (through the real API).
    pub fn record(&self) -> String {
        use migrator::switch::TrafficSwitch;
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(self.switch().current()).expect("read record")
    }

    /// Points the record somewhere else behind the migrator's back.
    pub fn move_record(&self, from: &str, to: &str) {
        use migrator::switch::TrafficSwitch;
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(self.switch().flip(from, to))
            .expect("move record");
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("CLOUDFLARE_API_TOKEN", self.token.clone())]
    }

    /// `migrator run --plan` of `plan` on this stage (its token in the
    /// environment), with `extra` flags.
    pub fn run_plan(&self, plan: &migrator::plan::Plan, extra: &[&str]) -> Finished {
        self.run_plan_env(plan, extra, &self.env())
    }

    /// [`Stage::run_plan`] with this environment instead of the stage's token.
    pub fn run_plan_env(
        &self,
        plan: &migrator::plan::Plan,
        extra: &[&str],
        env: &[(&'static str, String)],
    ) -> Finished {
        let path = self.write_plan(plan);
        let mut args = vec!["run", "--plan", path.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        run_with_env(&args, env, RUN_TIMEOUT)
    }

    /// A whole `migrator run` of `plan`, its report and start-command logs
    /// kept in the stage's directory.
    pub fn migrate(&self, plan: &migrator::plan::Plan) -> Migrated {
        let report = self.dir.path().join("report.json");
        let dir = self.dir.path().to_str().expect("utf-8 path");
        let out = self.run_plan(
            plan,
            &[
                "--report",
                report.to_str().expect("utf-8 path"),
                "--workdir",
                dir,
            ],
        );
        Migrated { out, report }
    }
}

/// The longest a `migrator run` of a test plan may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// A finished `migrator run` and where its JSON report is.
pub struct Migrated {
    pub out: Finished,
    pub report: PathBuf,
}

impl Migrated {
    /// The JSON report the run wrote.
    pub fn report(&self) -> migrator::report::MigrationReport {
        serde_json::from_slice(&std::fs::read(&self.report).expect("report written"))
            .expect("report json")
    }
}

/// The edge as a running process: its API and proxy addresses and the token
/// it accepts.
pub struct EdgeParts {
    pub proc: Proc,
    pub api: SocketAddr,
    pub proxy: SocketAddr,
    pub token: String,
}

/// Starts the edge with the demo's zone and record (pointing at 127.0.0.2,
/// origins on `port`); `extra` is appended to its config.
pub fn start_edge(dir: &Path, port: u16, extra: &str) -> EdgeParts {
    let token = format!("test-token-{}", std::process::id());
    let cfg = migrator::demo::edge_toml(
        port,
        Duration::from_millis(500),
        Duration::ZERO,
        &dir.join("edge-state.json"),
    );
    // Top-level keys go before the tables, tables after.
    let split = extra.find("\n[").unwrap_or(extra.len());
    let cfg = format!("{}\n{cfg}{}", &extra[..split], &extra[split..]);
    let cfg_path = dir.join("edge.toml");
    std::fs::write(&cfg_path, cfg).expect("edge.toml");
    let mut cmd = Command::new(sibling_bin("edge"));
    cmd.arg("--config")
        .arg(&cfg_path)
        .env(EDGE_TOKEN_ENV, &token)
        .env(migrator::demo::EDGE_ADMIN_TOKEN_ENV, EDGE_ADMIN_TOKEN);
    let (proc, v) = spawn_server(cmd, "edge", &dir.join("edge.log"));
    let addr = |k: &str| -> SocketAddr { v[k].as_str().expect(k).parse().expect("address") };
    EdgeParts {
        proc,
        api: addr("api"),
        proxy: addr("proxy"),
        token,
    }
}

/// The migrator's own Cloudflare switch, pointed at the edge's API.
pub fn cloudflare_switch(
    api: SocketAddr,
    token: &str,
) -> migrator::switch::cloudflare::CloudflareSwitch {
    let plan = migrator::plan::CloudflarePlan {
        zone: migrator::demo::ZONE.into(),
        record: migrator::demo::RECORD.into(),
        api_base: url::Url::parse(&format!("http://{api}/client/v4/")).expect("url"),
    };
    migrator::switch::cloudflare::CloudflareSwitch::new(
        &plan,
        migrator::switch::cloudflare::Token::new(token.to_string()),
        Duration::from_secs(30),
    )
    .expect("switch")
}

/// Starts an example-app on `ip:port` and waits for its listening line.
pub fn start_app(ip: &str, port: u16, store: &str, id: &str, log: &Path) -> Proc {
    let mut cmd = Command::new(sibling_bin("example-app"));
    cmd.arg("--listen")
        .arg(format!("{ip}:{port}"))
        .arg("--store")
        .arg(store)
        .arg("--instance-id")
        .arg(id);
    spawn_server(cmd, id, log).0
}

/// `run_migrator` with owned env pairs.
pub fn run_with_env(args: &[&str], env: &[(&'static str, String)], timeout: Duration) -> Finished {
    let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_migrator(args, &e, timeout)
}
