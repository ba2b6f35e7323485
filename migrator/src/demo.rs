//! `migrator demo`: the whole cutover on one machine, nothing installed.
//!
//! It starts the edge (the local Cloudflare stand-in) and example-app A as
//! child processes on a fresh SQLite store, builds a plan in code whose start
//! and stop commands are real command lines for the example-app, and runs the
//! same pipeline as `migrator run`. Every child is ended by pid on every exit
//! path (the [`Reaper`] guard, also after Ctrl-C).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use handover_contract::exit;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

use crate::health::HealthClient;
use crate::plan::{
    CloudflarePlan, ConvergePlan, DrainPlan, FeederMode, FeederPlan, HostChecks, Origin, Plan,
    SwitchPlan, Timeouts, WatchPlan,
};
use crate::process::Reaper;
use crate::report::Budgets;
use crate::steps::{self, RunOptions};
use crate::switch::cloudflare::Token;
use handover_cli::Style;

/// The zone and record the demo's edge serves.
pub const ZONE: &str = "handover.test";
pub const RECORD: &str = "shop.handover.test";
const A_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const B_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The edge reads its accepted token from this variable (never from a file).
const EDGE_TOKEN_ENV: &str = "HANDOVER_DEMO_EDGE_TOKEN";

/// `migrator demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Orders per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Roughly how long the load runs: half before the flip, a quarter after
    /// A is stopped, the drain in between.
    #[arg(long, default_value = "20s", value_parser = handover_contract::duration::parse)]
    pub duration: Duration,
    /// Write the JSON report here (also kept as DIR/report.json with --workdir).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Draw the SVG timeline here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Keep the ack log, store, logs and reports here (default: a temporary
    /// directory, removed at the end).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Event store URL for A and B (default: sqlite in the workdir).
    #[arg(long)]
    pub store: Option<String>,
    /// Where `example-app` and `edge` are (default: beside this executable).
    #[arg(long, env = "HANDOVER_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// The edge's propagation window.
    #[arg(long, default_value = "2s", value_parser = handover_contract::duration::parse)]
    pub propagation: Duration,
    /// The edge's idle timeout: how long a client connection keeps reusing
    /// its origin connection between requests (each client connection still
    /// moves to B at its own moment inside the propagation window).
    #[arg(long, default_value = "2s", value_parser = handover_contract::duration::parse)]
    pub idle_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Bad arguments or missing executables: nothing was started.
    #[error("{0}")]
    Setup(String),
    /// The edge or A could not be started.
    #[error("{0}")]
    Stage(String),
    #[error(transparent)]
    Run(#[from] steps::RunError),
}

impl DemoError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DemoError::Setup(_) | DemoError::Run(_) => exit::USAGE,
            DemoError::Stage(_) => exit::FAILED,
        }
    }
}

/// Where the executables are.
pub fn bin_dir(explicit: Option<&Path>) -> Result<PathBuf, DemoError> {
    let dir = match explicit {
        Some(d) => d.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(|| DemoError::Setup("cannot find this executable's directory".into()))?,
    };
    for name in ["example-app", "edge"] {
        if !dir.join(name).is_file() {
            return Err(DemoError::Setup(format!(
                "{} not found in {}: build the workspace first (cargo build --release --workspace --bins) \
                 or set HANDOVER_BIN_DIR",
                name,
                dir.display()
            )));
        }
    }
    Ok(dir)
}

/// A port free on both origin addresses, so A and B can share `origin_port`.
pub fn shared_free_port() -> Result<u16, DemoError> {
    for _ in 0..100 {
        let a = TcpListener::bind(SocketAddr::from((A_IP, 0))).map_err(|e| {
            DemoError::Setup(format!("cannot bind {A_IP}: {e} (is 127.0.0.0/8 on lo?)"))
        })?;
        let port = a
            .local_addr()
            .map_err(|e| DemoError::Setup(e.to_string()))?
            .port();
        if TcpListener::bind(SocketAddr::from((B_IP, port))).is_ok() {
            return Ok(port);
        }
    }
    Err(DemoError::Setup(format!(
        "no port free on both {A_IP} and {B_IP}"
    )))
}

/// A random hex token (never printed).
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        // Not secret-grade, but the edge only listens on loopback for this run.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The edge's `edge.toml` for the demo.
pub fn edge_toml(origin_port: u16, propagation: Duration, idle: Duration, state: &Path) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    format!(
        r#"api_listen = "127.0.0.1:0"
proxy_listen = "127.0.0.1:0"
origin_port = {origin_port}
propagation = "{prop}"
idle_timeout = "{idle}"
state_file = {state}
tokens_env = "{EDGE_TOKEN_ENV}"

[[zones]]
name = "{ZONE}"

[[zones.records]]
name = "{RECORD}"
type = "A"
content = "{A_IP}"
proxied = true
ttl = 1
"#,
        prop = ms(propagation),
        idle = ms(idle),
        state = toml::Value::String(state.to_string_lossy().into_owned()),
    )
}

#[derive(Deserialize)]
struct EdgeListening {
    api: SocketAddr,
    proxy: SocketAddr,
}

#[derive(Deserialize)]
struct AppListening {
    addr: SocketAddr,
}

/// Spawns `cmd`, stderr to `log`, and reads its one JSON `listening` line from
/// stdout; the rest of stdout is appended to the log.
async fn spawn_listening(
    mut cmd: Command,
    log: &Path,
    reaper: &Reaper,
    what: &str,
) -> Result<(Child, String), DemoError> {
    let file = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", p.display())))
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(file(log)?)
        .process_group(0)
        .spawn()
        .map_err(|e| DemoError::Stage(format!("cannot start {what}: {e}")))?;
    if let Some(pid) = child.id() {
        reaper.track(pid);
    }
    let Some(stdout) = child.stdout.take() else {
        return Err(DemoError::Stage(format!("{what}: no stdout")));
    };
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    let line = match line {
        Ok(Ok(Some(l))) => l,
        Ok(_) => {
            return Err(DemoError::Stage(format!(
                "{what} exited before listening; see {}",
                log.display()
            )))
        }
        Err(_) => {
            return Err(DemoError::Stage(format!(
                "{what} did not print its listening line within 30s; see {}",
                log.display()
            )))
        }
    };
    let mut rest = file(log)?;
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = writeln!(rest, "{l}");
        }
    });
    Ok((child, line))
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs the demo; returns the exit code.
pub async fn run(args: DemoArgs) -> Result<i32, DemoError> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(DemoError::Setup(format!(
            "--rate must be a positive number, got {}",
            args.rate
        )));
    }
    if args.duration < Duration::from_secs(2) {
        return Err(DemoError::Setup("--duration must be at least 2s".into()));
    }
    let bins = bin_dir(args.bin_dir.as_deref())?;
    let (workdir, _temp) = match &args.workdir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", d.display())))?;
            let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
            clear_previous_run(&d)?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("handover-demo-")
                .tempdir()
                .map_err(|e| DemoError::Setup(format!("cannot create a temp dir: {e}")))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let reaper = Reaper::owning();
    let cancel = crate::interrupt::token(Some(reaper.clone()));
    let style = Style::stdout();
    let result = stage_and_run(&args, &bins, &workdir, &reaper, cancel, style).await;
    reaper.reap(Duration::from_secs(10));
    if args.workdir.is_some() {
        println!(
            "workdir: {} (acks.jsonl, store, logs, report.json)",
            workdir.display()
        );
    }
    result
}

/// What a demo run writes into its workdir. A second run in the same DIR
/// starts from a clean slate: the old edge state would keep the record on B
/// and the old store would hold the previous run's orders.
const RUN_FILES: &[&str] = &[
    "edge-state.json",
    "edge.toml",
    "edge.log",
    "events.db",
    "events.db-wal",
    "events.db-shm",
    "acks.jsonl",
    "report.json",
    "plan.toml",
    "a.log",
    "b-start.log",
];

/// Removes the files a previous demo run left in `dir` (only those).
fn clear_previous_run(dir: &Path) -> Result<(), DemoError> {
    for name in RUN_FILES {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DemoError::Setup(format!(
                    "cannot clear {} from a previous run: {e}",
                    path.display()
                )))
            }
        }
    }
    Ok(())
}

async fn stage_and_run(
    args: &DemoArgs,
    bins: &Path,
    workdir: &Path,
    reaper: &Reaper,
    cancel: tokio_util::sync::CancellationToken,
    style: Style,
) -> Result<i32, DemoError> {
    let port = shared_free_port()?;
    let token = random_token();

    // The edge.
    let edge_cfg = workdir.join("edge.toml");
    std::fs::write(
        &edge_cfg,
        edge_toml(
            port,
            args.propagation,
            args.idle_timeout,
            &workdir.join("edge-state.json"),
        ),
    )
    .map_err(|e| DemoError::Setup(format!("cannot write {}: {e}", edge_cfg.display())))?;
    let mut cmd = Command::new(bins.join("edge"));
    cmd.arg("--config")
        .arg(&edge_cfg)
        .env(EDGE_TOKEN_ENV, &token);
    let (_edge, line) = spawn_listening(cmd, &workdir.join("edge.log"), reaper, "edge").await?;
    let edge: EdgeListening = serde_json::from_str(&line)
        .map_err(|e| DemoError::Stage(format!("edge printed {line:?}: {e}")))?;

    // Origin A on the shared store.
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", workdir.join("events.db").display()));
    let app = bins.join("example-app");
    let a_listen = SocketAddr::from((A_IP, port));
    let mut cmd = Command::new(&app);
    cmd.arg("--listen")
        .arg(a_listen.to_string())
        .arg("--store")
        .arg(&store)
        .arg("--instance-id")
        .arg("a");
    let (a_child, line) =
        spawn_listening(cmd, &workdir.join("a.log"), reaper, "example-app A").await?;
    let a_pid = a_child
        .id()
        .ok_or_else(|| DemoError::Stage("example-app A exited at once".into()))?;
    let listening: AppListening = serde_json::from_str(&line)
        .map_err(|e| DemoError::Stage(format!("example-app A printed {line:?}: {e}")))?;
    let a_url = origin_url(listening.addr)?;
    wait_healthy(&a_url, Duration::from_secs(30)).await?;

    let plan = demo_plan(DemoStage {
        rate: args.rate,
        duration: args.duration,
        port,
        api: edge.api,
        proxy: edge.proxy,
        app: &app,
        store: &store,
        a_pid,
        workdir,
        propagation: args.propagation,
        idle_timeout: args.idle_timeout,
    })?;
    // For reading, not for running: a store password would be in B's command.
    let _ = std::fs::write(workdir.join("plan.toml"), plan.to_toml_shown());
    println!(
        "demo: edge api {} proxy {}, A {} (pid {a_pid}), B to start on {}:{port}, store {}",
        edge.api,
        edge.proxy,
        a_listen,
        B_IP,
        crate::redact::passwords(&store)
    );

    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| workdir.join("report.json"));
    let outcome = steps::run(RunOptions {
        plan,
        dry_run: false,
        report: Some(report_path.clone()),
        plot: args.plot.clone(),
        workdir: workdir.to_path_buf(),
        style,
        reaper: reaper.clone(),
        cancel,
        token: Some(Token::new(token)),
    })
    .await?;
    if args.report.is_some() && args.workdir.is_some() {
        let _ = std::fs::copy(&report_path, workdir.join("report.json"));
    }
    drop(a_child);
    Ok(outcome.exit_code)
}

/// A postgres URL's password is not for the terminal.
fn origin_url(addr: SocketAddr) -> Result<Url, DemoError> {
    Url::parse(&format!("http://{addr}/"))
        .map_err(|e| DemoError::Stage(format!("bad origin address {addr}: {e}")))
}

async fn wait_healthy(base: &Url, timeout: Duration) -> Result<(), DemoError> {
    let client = HealthClient::new(Duration::from_secs(2));
    let url = base
        .join("health")
        .map_err(|e| DemoError::Stage(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let p = client.probe(&url).await;
        if p.is_healthy() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DemoError::Stage(format!(
                "{url} not healthy within {}s: {}",
                timeout.as_secs(),
                p.describe()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the demo's plan is built from.
pub struct DemoStage<'a> {
    pub rate: f64,
    pub duration: Duration,
    pub port: u16,
    pub api: SocketAddr,
    pub proxy: SocketAddr,
    pub app: &'a Path,
    pub store: &'a str,
    pub a_pid: u32,
    pub workdir: &'a Path,
    pub propagation: Duration,
    pub idle_timeout: Duration,
}

/// The demo's plan: the same shape a user writes (see docs/plan.md).
pub fn demo_plan(s: DemoStage<'_>) -> Result<Plan, DemoError> {
    let bad = |e: url::ParseError| DemoError::Setup(e.to_string());
    let a_url = Url::parse(&format!("http://{A_IP}:{}/", s.port)).map_err(bad)?;
    let b_url = Url::parse(&format!("http://{B_IP}:{}/", s.port)).map_err(bad)?;
    let target = Url::parse(&format!("http://{RECORD}:{}/", s.proxy.port())).map_err(bad)?;
    let api_base = Url::parse(&format!("http://{}/client/v4/", s.api)).map_err(bad)?;
    let b_start = format!(
        "exec {} --listen {B_IP}:{} --store {} --instance-id b",
        sh_quote(&s.app.to_string_lossy()),
        s.port,
        sh_quote(s.store)
    );
    let quiet = Duration::from_secs(2);
    let plan = Plan {
        a: Origin {
            url: a_url,
            health_url: None,
            address: A_IP.to_string(),
            start: None,
            stop: Some(format!("kill -TERM {}", s.a_pid)),
            instance: None,
        },
        b: Origin {
            url: b_url,
            health_url: None,
            address: B_IP.to_string(),
            start: Some(b_start),
            stop: Some("kill -TERM {pid}".into()),
            instance: None,
        },
        switch: SwitchPlan::Cloudflare(CloudflarePlan {
            zone: ZONE.into(),
            record: RECORD.into(),
            api_base,
        }),
        feeder: FeederPlan {
            mode: FeederMode::InProcess,
            target: Some(target),
            rate: s.rate,
            resolve: [(RECORD.to_string(), s.proxy)].into_iter().collect(),
            ack_log: Some(s.workdir.join("acks.jsonl")),
            run_before_flip: s.duration / 2,
            run_after_flip: s.duration / 4,
            ..FeederPlan::default()
        },
        budgets: Budgets::default(),
        timeouts: Timeouts {
            // Propagation plus the sticky idle timeout plus the quiet window,
            // with room: beyond it, stopping A hands over what is left.
            drain: s.propagation + s.idle_timeout + quiet + Duration::from_secs(8),
            ..Timeouts::default()
        },
        converge: ConvergePlan::default(),
        drain: DrainPlan {
            quiet,
            ..DrainPlan::default()
        },
        watch: WatchPlan::default(),
        host_checks: HostChecks::default(),
        reconcile: Default::default(),
    };
    plan.validate()
        .map_err(|e| DemoError::Setup(format!("demo plan: {e}")))?;
    Ok(plan)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_run_is_cleared_but_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["edge-state.json", "events.db", "acks.jsonl", "notes.txt"] {
            std::fs::write(dir.path().join(name), "old").unwrap();
        }
        clear_previous_run(dir.path()).unwrap();
        assert!(!dir.path().join("edge-state.json").exists());
        assert!(!dir.path().join("events.db").exists());
        assert!(!dir.path().join("acks.jsonl").exists());
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn edge_config_names_the_record_and_no_token() {
        let t = edge_toml(
            8080,
            Duration::from_secs(2),
            Duration::from_secs(3),
            Path::new("/tmp/x/edge-state.json"),
        );
        assert!(t.contains("origin_port = 8080"));
        assert!(t.contains("shop.handover.test"));
        assert!(t.contains("tokens_env"));
        assert!(!t.contains("tokens = "));
        t.parse::<toml::Table>().unwrap();
    }

    #[test]
    fn demo_plan_is_a_valid_plan() {
        let dir = tempfile::tempdir().unwrap();
        let p = demo_plan(DemoStage {
            rate: 200.0,
            duration: Duration::from_secs(20),
            port: 18080,
            api: "127.0.0.1:1".parse().unwrap(),
            proxy: "127.0.0.1:2".parse().unwrap(),
            app: Path::new("/bin/example app"),
            store: "sqlite:/tmp/e.db",
            a_pid: 42,
            workdir: dir.path(),
            propagation: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(3),
        })
        .unwrap();
        assert_eq!(p.a.stop.as_deref(), Some("kill -TERM 42"));
        assert!(p.b.start.as_deref().unwrap().contains("'/bin/example app'"));
        // What the demo writes as plan.toml reads back as the same plan.
        let again = Plan::from_toml(&p.to_toml()).unwrap();
        assert_eq!(again.to_toml(), p.to_toml());
    }
}
