//! `migrator fleet`: maintain many hosts without downtime. Each host's
//! service moves to a spare "hold-over" host (a whole `migrator run`,
//! reconciled), the emptied host is maintained and verified (with retries),
//! the service moves back (a second run) and the hold-over is released.
//! Hosts go in staggered batches with seeded jitter; a host that never
//! verifies stays on its hold-over (the service never goes down) and the
//! fleet goes on unless `max_failed_hosts` is exceeded.
//!
//! - [`plan`]: `[fleet]`, `[fleet.host]` and the run plans derived per host.
//! - [`schedule`]: batches, hold-overs, jitter, when the fleet stops (pure).
//! - [`host`]: one host's lifecycle as a state machine (pure).
//! - [`turn`]: one host's turn with its I/O (runs, maintain, verify).
//! - [`progress`]: the snapshot a view or the metrics read; the event lines.
//! - [`metrics`]: `--metrics ADDR`, Prometheus text.
//! - [`dry_run`]: `--dry-run`'s printout.
//! - [`report`]: the fleet report and its summary.
//! - [`watch`]: a probe on every host's record all fleet long.
//! - [`demo`]: `migrator demo --fleet N --holdover H` on loopback.

pub mod demo;
pub mod dry_run;
pub mod host;
pub mod metrics;
pub mod plan;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod turn;
pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Args;
use handover_cli::Style;
use handover_contract::exit;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::faults::Targets;
use crate::process::Reaper;
use crate::report::rfc3339_now;
use crate::switch::cloudflare::Token;
use host::Phase;
pub use plan::FleetPlan;
use progress::{HostView, Progress, Snapshot};
use report::{FleetReport, HostReport};
use schedule::{Hooks, HostEnd, Scheduler, Turn};
use turn::Fleet;

/// `migrator fleet`.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// The fleet plan (TOML; see docs/fleet.md).
    #[arg(long)]
    pub plan: PathBuf,
    /// Print the batches (jitter drawn), each host's operations and every
    /// command; start and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the fleet report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Directory for the runs' ack logs, reports and start-command logs.
    #[arg(long, default_value = ".")]
    pub workdir: PathBuf,
    /// The jitter's seed (a dry run prints the one it drew).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Serve the fleet's progress as Prometheus text on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Any plan key: `--set fleet.batch=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::plan::parse_set)]
    pub set: Vec<(String, String)>,
}

/// Everything a fleet run needs besides the plan.
pub struct FleetOptions {
    pub plan: FleetPlan,
    pub dry_run: bool,
    pub report: Option<PathBuf>,
    pub workdir: PathBuf,
    pub seed: Option<u64>,
    /// Already bound, so a bad address is refused before anything starts.
    pub metrics: Option<TcpListener>,
    pub style: Style,
    pub reaper: Reaper,
    pub cancel: CancellationToken,
    pub token: Option<Token>,
    pub targets: Targets,
}

/// Why a fleet could not be run at all (nothing was started): exit 2.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The operator's command line or plan: they must fix it.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
}

/// `migrator fleet`: loads the plan, binds `--metrics`, runs; the exit code.
pub async fn command(args: FleetArgs) -> Result<i32, FleetError> {
    if !args.workdir.is_dir() {
        return Err(FleetError::Usage(format!(
            "--workdir {} is not a directory",
            args.workdir.display()
        )));
    }
    let plan = FleetPlan::load(&args.plan, &args.set)?;
    let metrics = bind_metrics(args.metrics, args.dry_run).await?;
    let report = run(FleetOptions {
        plan,
        dry_run: args.dry_run,
        report: args.report,
        workdir: args.workdir,
        seed: args.seed,
        metrics,
        style: Style::stdout(),
        reaper: Reaper::default(),
        cancel: crate::interrupt::token(None),
        token: None,
        targets: Targets::default(),
    })
    .await?;
    Ok(exit_code(report.as_ref()))
}

/// Binds `--metrics` (not for a dry run, which serves nothing).
pub async fn bind_metrics(
    addr: Option<std::net::SocketAddr>,
    dry_run: bool,
) -> Result<Option<TcpListener>, FleetError> {
    match addr {
        Some(a) if !dry_run => TcpListener::bind(a)
            .await
            .map(Some)
            .map_err(|e| FleetError::Usage(format!("--metrics {a}: cannot listen: {e}"))),
        _ => Ok(None),
    }
}

/// 0 when the fleet passed (or a dry run), 1 when not.
pub fn exit_code(report: Option<&FleetReport>) -> i32 {
    match report {
        Some(r) if !r.passed => exit::FAILED,
        _ => exit::OK,
    }
}

/// Runs the fleet (or prints its dry run: `None`). `Err` only before
/// anything changed (the watch could not start).
pub async fn run(opts: FleetOptions) -> Result<Option<FleetReport>, FleetError> {
    let seed = opts.seed.unwrap_or_else(schedule::fresh_seed);
    let f = &opts.plan.fleet;
    if opts.dry_run {
        let mut out = std::io::stdout().lock();
        let _ = dry_run::print(&opts.plan, seed, &opts.workdir, &mut out);
        return Ok(None);
    }
    let started_at = rfc3339_now();
    let snapshot = Snapshot {
        batch: 0,
        seed,
        stopped: None,
        hosts: f
            .hosts
            .iter()
            .map(|h| HostView {
                name: h.name(),
                address: h.address().to_string(),
                holdover: None,
                phase: Phase::Waiting,
                attempts: 0,
                lost: 0,
                failed: 0,
            })
            .collect(),
    };
    let progress = Progress::new(snapshot, opts.style);
    progress.line(&format!(
        "fleet: {} hosts, {} hold-overs, batches of {}, seed {seed}",
        f.hosts.len(),
        f.holdover.len(),
        f.batch
    ));
    let watch = match &f.watch {
        Some(w) => {
            let started = watch::Watch::start(&opts.plan, w).await;
            let started = started.map_err(FleetError::Usage)?;
            progress.line(&format!(
                "fleet: watching every host's record: GET {} at {}/s",
                w.path, w.rate
            ));
            Some(started)
        }
        None => None,
    };
    let stop_metrics = CancellationToken::new();
    if let Some(listener) = opts.metrics {
        if let Ok(addr) = listener.local_addr() {
            progress.line(&format!("fleet: metrics on http://{addr}/metrics"));
        }
        tokio::spawn(metrics::serve(
            listener,
            progress.clone(),
            stop_metrics.clone(),
        ));
    }
    let sched = Arc::new(Mutex::new(Scheduler::new(
        f.hosts.len(),
        f.holdover.len(),
        f.batch,
        f.max_failed_hosts,
    )));
    let (max_jitter, hosts) = (f.jitter, f.hosts.len());
    let watcher = {
        let (sched, cancel) = (sched.clone(), opts.cancel.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            if let Ok(mut s) = sched.lock() {
                s.stop("interrupted (Ctrl-C)");
            }
        })
    };
    let hooks = Turns {
        fleet: Fleet {
            plan: opts.plan,
            workdir: opts.workdir,
            style: opts.style,
            reaper: opts.reaper,
            cancel: opts.cancel,
            token: opts.token,
            targets: opts.targets,
            progress: progress.clone(),
        },
        reports: Mutex::new(vec![None; hosts]),
    };
    schedule::drive(sched.clone(), seed, max_jitter, &hooks).await;
    watcher.abort();
    let (batches, stopped, not_started) = match sched.lock() {
        Ok(s) => (
            s.batches.clone(),
            s.stopped().map(str::to_string),
            s.not_started(),
        ),
        Err(_) => (Vec::new(), Some("the scheduler failed".into()), 0..0),
    };
    for i in not_started {
        let why = "not started: the fleet stopped, its service never moved";
        progress.event(i, Phase::Skipped, "skipped", false, why);
    }
    let seen = match watch {
        Some(w) => w.finish().await,
        None => Vec::new(),
    };
    let reports = hooks.reports.into_inner().unwrap_or_default();
    let fleet = &hooks.fleet;
    let why = stopped
        .clone()
        .unwrap_or_else(|| "the fleet stopped".into());
    let mut report = FleetReport {
        passed: false,
        reasons: Vec::new(),
        seed,
        batches: batches
            .iter()
            .map(|b| {
                b.iter()
                    .map(|h| fleet.plan.fleet.hosts[*h].name())
                    .collect()
            })
            .collect(),
        stopped,
        hosts: reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|| fleet.unstarted(i, &why)))
            .collect(),
        started_at,
        finished_at: rfc3339_now(),
    };
    for (h, w) in report.hosts.iter_mut().zip(seen) {
        h.watch = w;
    }
    report.judge();
    stop_metrics.cancel();
    let mut out = std::io::stdout().lock();
    let _ = report.print(&mut out, fleet.style);
    if let Some(path) = &opts.report {
        if let Err(e) = report.write(path) {
            let _ = std::io::Write::write_fmt(
                &mut out,
                format_args!("cannot write the fleet report {}: {e}\n", path.display()),
            );
        }
    }
    Ok(Some(report))
}

/// The fleet's [`Hooks`]: turns run by [`Fleet`], reports kept per host.
struct Turns {
    fleet: Fleet,
    reports: Mutex<Vec<Option<HostReport>>>,
}

impl Hooks for Turns {
    fn batch(&self, number: usize, hosts: &[usize]) {
        let names: Vec<String> = hosts
            .iter()
            .map(|h| self.fleet.plan.fleet.hosts[*h].name())
            .collect();
        self.fleet.progress.batch(number, &names);
    }

    async fn work(&self, turn: Turn) -> HostEnd {
        let (end, report) = self.fleet.turn(turn).await;
        if let Ok(mut r) = self.reports.lock() {
            r[turn.host] = Some(report);
        }
        end
    }

    fn skipped(&self, turn: Turn) {
        self.fleet.progress.event(
            turn.host,
            Phase::Skipped,
            "skipped",
            false,
            "not started: the fleet stopped",
        );
    }

    fn stopped(&self, why: &str) {
        self.fleet.progress.stopped(why);
    }
}
