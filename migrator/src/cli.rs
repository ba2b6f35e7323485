//! The command line: `migrator run`, `migrator demo`, `migrator reconcile`,
//! and the mapping of their results to exit codes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use handover_cli::{ExitStatus, Style};
use handover_contract::exit;

use crate::demo::DemoArgs;
use crate::faults::{FaultSpec, Targets};
use crate::live::Session;
use crate::plan::{parse_set, Plan, PlanError};
use crate::process::Reaper;
use crate::reconcile::{self, Progress, ProgressFn, ReconcileError, ReconcileOptions};
use crate::report::{self, MigrationReport, StepOutcome, StepTimer};
use crate::steps::{self, RunError, RunOptions};
use feeder::view::{ViewArgs, ViewError};

/// Moves a live service from origin A to origin B and proves, order by
/// order, that nothing acknowledged was lost.
#[derive(Debug, Parser)]
#[command(name = "migrator", version, about, long_about = None)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a cutover plan: preflight → start B → converge → flip → drain A → stop A → reconcile → verdict.
    Run(RunArgs),
    /// Step 1 alone: the plan, the switch, the sources and the hosts (this
    /// machine, and A, B and the store over ssh) checked against the
    /// planned load; starts and changes nothing (as `run --dry-run`).
    Preflight(RunArgs),
    /// The whole cutover on this machine: edge, A and B as child processes, nothing to install.
    Demo(DemoArgs),
    /// Reconcile an ack log against an instance's stored orders (step 7 alone).
    Reconcile(ReconcileArgs),
    /// Maintain many hosts without downtime: each host's service to a
    /// hold-over and back (two runs), in staggered batches (docs/fleet.md).
    Fleet(crate::fleet::FleetArgs),
}

/// `migrator run`. Flags override the plan file's values.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The plan (TOML; see docs/plan.md).
    #[arg(long, env = "HANDOVER_PLAN")]
    pub plan: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Draw the SVG timeline here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write the self-contained HTML report here (chart, steps, load, reconcile, verdict).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Preflight and print the plan; start and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Directory for start-command logs and the default ack log (default: the current directory).
    #[arg(long, default_value = ".")]
    pub workdir: PathBuf,
    /// Overrides `feeder.rate` (orders per second).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Overrides `feeder.max_in_flight`.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Overrides `feeder.target`.
    #[arg(long)]
    pub target: Option<String>,
    /// Overrides `feeder.ack_log`.
    #[arg(long)]
    pub ack_log: Option<PathBuf>,
    /// Overrides `feeder.run_before_flip` (e.g. 10s).
    #[arg(long)]
    pub run_before_flip: Option<String>,
    /// Overrides `feeder.run_after_flip`.
    #[arg(long)]
    pub run_after_flip: Option<String>,
    /// Overrides `switch.api_base` (Cloudflare switch).
    #[arg(long)]
    pub api_base: Option<String>,
    /// A fault to inject: `STEP:KIND[:ARG]`, `before:STEP:…`, `after:STEP:…`
    /// (repeatable; also `[[faults]]` in the plan). See docs/reliability.md.
    #[arg(long = "fault", value_name = "STEP:KIND[:ARG]")]
    pub faults: Vec<FaultSpec>,
    /// Host-check warnings refuse the run too (exit 2), not only fatal findings.
    #[arg(long)]
    pub strict: bool,
    /// Any plan key: `--set timeouts.converge=90s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub view: ViewArgs,
}

impl RunArgs {
    /// The flags as `dotted.key = value` overrides, `--set` last.
    pub fn overrides(&self) -> Vec<(String, String)> {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut o = Vec::new();
        if let Some(r) = self.rate {
            o.push(("feeder.rate".into(), r.to_string()));
        }
        if let Some(n) = self.max_in_flight {
            o.push(("feeder.max_in_flight".into(), n.to_string()));
        }
        if let Some(t) = &self.target {
            o.push(("feeder.target".into(), q(t)));
        }
        if let Some(p) = &self.ack_log {
            o.push(("feeder.ack_log".into(), q(&p.to_string_lossy())));
        }
        if let Some(d) = &self.run_before_flip {
            o.push(("feeder.run_before_flip".into(), q(d)));
        }
        if let Some(d) = &self.run_after_flip {
            o.push(("feeder.run_after_flip".into(), q(d)));
        }
        if let Some(u) = &self.api_base {
            o.push(("switch.api_base".into(), q(u)));
        }
        if self.strict {
            o.push(("host_checks.strict".into(), "true".into()));
        }
        o.extend(self.set.iter().cloned());
        o
    }
}

/// What ended a command; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    /// The report path given on the command line cannot be written.
    #[error("cannot write report {}: {source}", path.display())]
    Report {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ExitStatus for CliError {
    fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_)
            | CliError::Plan(_)
            | CliError::Run(RunError::Preflight(_))
            | CliError::Report { .. }
            | CliError::View(_)
            | CliError::Fleet(_) => exit::USAGE,
            CliError::Demo(e) => e.exit_code(),
            CliError::Reconcile(e) if e.is_usage() => exit::USAGE,
            CliError::Reconcile(_) => exit::FAILED,
        }
    }
}

/// Runs one command; returns its exit code.
pub async fn run(opts: Opts) -> Result<i32, CliError> {
    match opts.command {
        Command::Preflight(args) => {
            let args = RunArgs {
                dry_run: true,
                ..args
            };
            run_command(args).await
        }
        Command::Run(args) => run_command(args).await,
        Command::Demo(args) => Ok(crate::demo::run(args).await?),
        Command::Reconcile(args) => reconcile_command(args).await,
        Command::Fleet(args) => Ok(crate::fleet::command(args).await?),
    }
}

/// `migrator run` (and `preflight`, its dry run).
async fn run_command(args: RunArgs) -> Result<i32, CliError> {
    let overrides = args.overrides();
    if args.plan.is_none() && overrides.is_empty() {
        return Err(CliError::Usage(
            "no plan: give --plan FILE (see docs/plan.md), or every key with --set".into(),
        ));
    }
    if !args.workdir.is_dir() {
        return Err(CliError::Usage(format!(
            "--workdir {} is not a directory",
            args.workdir.display()
        )));
    }
    let plan = Plan::load(args.plan.as_deref(), &overrides)?;
    args.view.check()?;
    let cancel = crate::interrupt::token(None);
    let session = if args.dry_run {
        None
    } else {
        Session::start(
            &args.view,
            "handover · migrator run",
            cancel.clone(),
            Box::new(|| crate::interrupt::force(None)),
        )?
    };
    let outcome = steps::run(RunOptions {
        plan,
        dry_run: args.dry_run,
        report: args.report,
        plot: args.plot,
        html: args.html,
        workdir: args.workdir,
        style: Style::stdout(),
        reaper: Reaper::default(),
        cancel,
        token: None,
        faults: args.faults,
        targets: Targets::default(),
        view: session.as_ref().map(Session::attach),
    })
    .await;
    if let Some(s) = session {
        s.finish();
    }
    Ok(outcome?.exit_code)
}

/// `migrator reconcile`: step 7 alone, against any running instance.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// The feeder's ack log (JSON lines); repeat for several feeders.
    #[arg(long = "acks", value_name = "FILE", required = true)]
    pub acks: Vec<PathBuf>,
    /// Base URL of the example app whose orders are checked (B).
    #[arg(long, value_name = "URL", required_unless_present = "plan")]
    pub app: Option<url::Url>,
    /// Read the stored orders where this plan's `[reconcile]` says (and wait
    /// on its converge source); `--app` then overrides B's URL.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// The run id `{run}` stands for in the plan's query or command
    /// (default: the one run of the ack logs).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Write the result as a JSON report (the `migrator run` shape) here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// How long B may take to apply the store head before reading its orders.
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = handover_contract::duration::parse)]
    pub apply_timeout: Duration,
    /// Ids listed per non-ok category.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_ids: usize,
    /// Judge every order B stores, not only those of the ack logs' runs
    /// (for a store no other client writes to).
    #[arg(long)]
    pub all_orders: bool,
}

/// Runs `migrator reconcile`: prints the summary and writes the report.
/// Exit 0 all ok, 1 not (or B never caught up); bad input (a missing or
/// malformed ack log, a bad URL or plan, an unreachable app or source) is an
/// `Err`: exit 2.
async fn reconcile_command(args: ReconcileArgs) -> Result<i32, CliError> {
    let progress: ProgressFn = Arc::new(|p: &Progress| match p {
        Progress::Applying { applied, head } => {
            eprintln!("reconcile: waiting for B to apply the head: applied {applied} of {head}")
        }
        Progress::Indexed { acks, distinct } => {
            eprintln!("reconcile: {acks} acks indexed ({distinct} distinct ids)")
        }
        Progress::Fetched { orders } => eprintln!("reconcile: {orders} orders read from B"),
    });
    let opts = ReconcileOptions {
        apply_timeout: args.apply_timeout,
        max_ids: args.max_ids,
        all_orders: args.all_orders,
        run: args.run.clone(),
        progress: Some(progress),
        ..ReconcileOptions::default()
    };
    let mut out = MigrationReport {
        started_at: report::rfc3339_now(),
        ..MigrationReport::default()
    };
    let step = StepTimer::start("reconcile");
    let result = match (&args.plan, &args.app) {
        (Some(path), app) => {
            use crate::sources::reconcile as stored;
            let plan = Plan::load(Some(path), &[])?;
            let b = app.clone().unwrap_or_else(|| plan.b.url.clone());
            let Some(source) = stored::from_plan(&plan.reconcile, &b, &opts)? else {
                return Err(CliError::Usage(format!(
                    "plan {}: reconcile.kind = \"none\": there is nothing to reconcile against",
                    path.display()
                )));
            };
            let converge = stored::wait_source(&plan).map_err(CliError::Usage)?;
            reconcile::reconcile_source(&args.acks, source.as_ref(), converge.as_deref(), &opts)
                .await
        }
        (None, Some(app)) => reconcile::reconcile_files(&args.acks, app, &opts).await,
        (None, None) => return Err(CliError::Usage("give --app URL or --plan FILE".into())),
    };
    let record = match result {
        Ok(r) => {
            let detail = format!("{} acks vs {} stored orders", r.acked_total, r.stored_total);
            out.reconcile = Some(r);
            step.finish(StepOutcome::Ok, detail)
        }
        Err(e) if e.is_usage() => return Err(e.into()),
        Err(e) => step.finish(StepOutcome::Failed, e.to_string()),
    };
    out.steps.push(record);
    report::verdict_reconcile(&mut out);
    out.finished_at = report::rfc3339_now();
    let mut stdout = std::io::stdout().lock();
    report::print_human(&out, &mut stdout, Style::stdout().color)
        .map_err(|e| ReconcileError::Internal(e.to_string()))?;
    if let Some(path) = &args.report {
        write_json(path, &out)?;
    }
    Ok(if out.passed { exit::OK } else { exit::FAILED })
}

fn write_json(path: &Path, report: &MigrationReport) -> Result<(), CliError> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other);
    json.and_then(|b| std::fs::write(path, b))
        .map_err(|source| CliError::Report {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Opts::command().debug_assert();
    }

    #[test]
    fn flags_become_overrides() {
        let o = Opts::try_parse_from([
            "migrator",
            "run",
            "--plan",
            "p.toml",
            "--rate",
            "250",
            "--target",
            "http://x/",
            "--set",
            "timeouts.drain=\"90s\"",
        ])
        .unwrap();
        let Command::Run(args) = o.command else {
            panic!("run expected")
        };
        let ov = args.overrides();
        assert!(ov.contains(&("feeder.rate".into(), "250".into())));
        assert!(ov.contains(&("feeder.target".into(), "\"http://x/\"".into())));
        assert!(ov.contains(&("timeouts.drain".into(), "\"90s\"".into())));
    }
}
