//! `migrator demo`: the whole cutover on one machine, nothing installed.
//!
//! It starts the edge (the local Cloudflare stand-in) and example-app A as
//! child processes on a fresh SQLite store, builds a plan in code whose start
//! and stop commands are real command lines for the example-app, and runs the
//! same pipeline as `migrator run`. Every child is ended by pid on every exit
//! path (the [`Reaper`] guard, also after Ctrl-C).
//!
//! - [`plan`]: the demo's plan and the edge's config.
//! - [`processes`]: finding, starting and waiting for the demo's processes.

pub mod plan;
pub mod processes;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use handover_cli::Style;
use handover_contract::exit;
use tokio::process::Command;

use crate::faults::api::EdgeAdmin;
use crate::faults::{FaultSpec, Targets};
use crate::process::Reaper;
use crate::steps::{self, RunOptions};
use crate::switch::cloudflare::Token;
pub use plan::{demo_plan, edge_toml, DemoStage};
pub use processes::{bin_dir, shared_free_port};
use processes::{origin_url, random_token, spawn_listening, wait_healthy, AppListening};

/// The zone and record the demo's edge serves.
pub const ZONE: &str = "handover.test";
pub const RECORD: &str = "shop.handover.test";
pub const A_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub const B_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The edge reads its accepted token from this variable (never from a file).
pub const EDGE_TOKEN_ENV: &str = "HANDOVER_DEMO_EDGE_TOKEN";
/// And its admin token (the nemesis arms faults with it) from this one.
pub const EDGE_ADMIN_TOKEN_ENV: &str = "HANDOVER_DEMO_EDGE_ADMIN_TOKEN";

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
    /// Write the self-contained HTML report here (also kept as
    /// DIR/report.html with --workdir).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
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
    /// The edge's idle timeout: a client connection idle longer than this
    /// takes the record as it is now on its next request; a busy one moves
    /// to B at its own moment inside the propagation window.
    #[arg(long, default_value = "2s", value_parser = handover_contract::duration::parse)]
    pub idle_timeout: Duration,
    /// A fault to inject: `STEP:KIND[:ARG]`, `before:STEP:…`, `after:STEP:…`
    /// (repeatable), e.g. `drain_a:kill-a`, `before:flip:api-429:5`,
    /// `converge:restart-store:2s`. See docs/reliability.md.
    #[arg(long = "fault", value_name = "STEP:KIND[:ARG]")]
    pub faults: Vec<FaultSpec>,
    /// How to stop the store for the store faults when it is not the
    /// demo's SQLite file (e.g. `scripts/pg.sh stop DIR`).
    #[arg(long, value_name = "CMD")]
    pub store_stop: Option<String>,
    /// How to start it again.
    #[arg(long, value_name = "CMD")]
    pub store_start: Option<String>,
    /// Any key of the demo's plan: `--set timeouts.converge=10s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::plan::parse_set)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub view: feeder::view::ViewArgs,
    /// A fleet of N hosts instead of one cutover: each host's service moves
    /// to a hold-over, the host is maintained and verified, the service
    /// moves back (see docs/fleet.md; `--set fleet.KEY=…` for its plan).
    #[arg(long, value_name = "N")]
    pub fleet: Option<usize>,
    /// With --fleet: the number of hold-over hosts.
    #[arg(long, value_name = "H", default_value_t = 2, requires = "fleet")]
    pub holdover: usize,
    /// With --fleet: this host's verify always fails (e.g. h2), to show the rollback.
    #[arg(long, value_name = "NAME", requires = "fleet")]
    pub fail_host: Option<String>,
    /// With --fleet: the jitter's seed.
    #[arg(long, requires = "fleet")]
    pub seed: Option<u64>,
    /// With --fleet: serve Prometheus text on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR", requires = "fleet")]
    pub metrics: Option<SocketAddr>,
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
    args.view
        .check()
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    if let Some(hosts) = args.fleet {
        return crate::fleet::demo::run(&args, hosts).await;
    }
    let bins = bin_dir(args.bin_dir.as_deref())?;
    check_plan(&args, &bins)?;
    let (workdir, _temp) = match &args.workdir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", d.display())))?;
            let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
            clear_previous_run(&d)?;
            (d, None)
        }
        None => {
            let (path, t) = processes::temp_workdir("handover-demo-")?;
            (path, Some(t))
        }
    };
    let reaper = Reaper::owning();
    let cancel = crate::interrupt::token(Some(reaper.clone()));
    let style = Style::stdout();
    let result = stage_and_run(&args, &bins, &workdir, &reaper, cancel, style).await;
    reaper.reap(Duration::from_secs(10));
    if args.workdir.is_some() {
        println!(
            "workdir: {} (acks.jsonl, store, logs, report.json, report.html)",
            workdir.display()
        );
    }
    result
}

/// Builds the demo's plan with stand-in addresses and applies `--set` and
/// `--fault` to it, so a bad key or fault is refused before anything starts.
fn check_plan(args: &DemoArgs, bins: &Path) -> Result<(), DemoError> {
    let here = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
    demo_plan(DemoStage {
        rate: args.rate,
        duration: args.duration,
        port: 1,
        api: here,
        proxy: here,
        app: &bins.join("example-app"),
        store: args.store.as_deref().unwrap_or("sqlite:events.db"),
        a_pid: 1,
        workdir: bins,
        propagation: args.propagation,
        idle_timeout: args.idle_timeout,
        faults: &args.faults,
        store_stop: args.store_stop.as_deref(),
        store_start: args.store_start.as_deref(),
    })?
    .with_overrides(&args.set)
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    Ok(())
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
    "report.html",
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
    let admin_token = random_token();

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
    let (_edge, edge) =
        processes::spawn_edge(bins, &edge_cfg, (&token, &admin_token), workdir, reaper).await?;

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
        faults: &args.faults,
        store_stop: args.store_stop.as_deref(),
        store_start: args.store_start.as_deref(),
    })?
    .with_overrides(&args.set)
    .map_err(|e| DemoError::Setup(e.to_string()))?;
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
    let html_path = match (&args.html, &args.workdir) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => Some(workdir.join("report.html")),
        (None, None) => None,
    };
    let force_reaper = reaper.clone();
    let session = crate::live::Session::start(
        &args.view,
        "handover · migrator demo",
        cancel.clone(),
        Box::new(move || crate::interrupt::force(Some(&force_reaper))),
    )
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    let outcome = steps::run(RunOptions {
        plan,
        dry_run: false,
        report: Some(report_path.clone()),
        plot: args.plot.clone(),
        html: html_path.clone(),
        workdir: workdir.to_path_buf(),
        style,
        reaper: reaper.clone(),
        cancel,
        token: Some(Token::new(token)),
        // The demo's faults are in its plan (plan.toml shows them).
        faults: Vec::new(),
        targets: Targets {
            edge_admin: Some(EdgeAdmin::new(
                url::Url::parse(&format!("http://{}/", edge.api))
                    .map_err(|e| DemoError::Stage(e.to_string()))?,
                admin_token,
            )),
        },
        view: session.as_ref().map(crate::live::Session::attach),
    })
    .await;
    if let Some(s) = session {
        s.finish();
    }
    let outcome = outcome?;
    if args.report.is_some() && args.workdir.is_some() {
        let _ = std::fs::copy(&report_path, workdir.join("report.json"));
    }
    if let (Some(p), Some(_), Some(_)) = (&html_path, &args.html, &args.workdir) {
        let _ = std::fs::copy(p, workdir.join("report.html"));
    }
    drop(a_child);
    Ok(outcome.exit_code)
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
}
