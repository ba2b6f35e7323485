//! The command line: `migrator run`, `migrator demo`, `migrator reconcile`,
//! and the mapping of their results to exit codes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use handover_contract::exit;
use tokio_util::sync::CancellationToken;

use crate::demo::DemoArgs;
use crate::plan::{parse_set, Plan, PlanError};
use crate::process::Reaper;
use crate::reconcile::ReconcileArgs;
use crate::steps::{self, RunError, RunOptions};
use crate::style::Style;

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
    /// The whole cutover on this machine: edge, A and B as child processes, nothing to install.
    Demo(DemoArgs),
    /// Reconcile an ack log against an instance's stored orders (step 7 alone).
    Reconcile(ReconcileArgs),
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
    /// Any plan key: `--set timeouts.converge=90s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
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
    Reconcile(#[from] crate::reconcile::ReconcileError),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Plan(_) | CliError::Run(RunError::Preflight(_)) => {
                exit::USAGE
            }
            CliError::Demo(e) => e.exit_code(),
            CliError::Reconcile(e) if e.is_usage() => exit::USAGE,
            CliError::Reconcile(_) => exit::FAILED,
        }
    }
}

/// A token cancelled by the first Ctrl-C (or SIGTERM). A second Ctrl-C ends
/// the process at once, after ending what `reaper` tracks.
pub fn interrupt_token(reaper: Option<Reaper>) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term => {},
        }
        eprintln!("interrupted: finishing the current step safely (Ctrl-C again to force)");
        t.cancel();
        let _ = tokio::signal::ctrl_c().await;
        if let Some(r) = reaper {
            r.reap(std::time::Duration::from_secs(2));
        }
        std::process::exit(130);
    });
    token
}

/// Runs one command; returns its exit code.
pub async fn run(opts: Opts) -> Result<i32, CliError> {
    match opts.command {
        Command::Run(args) => {
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
            let outcome = steps::run(RunOptions {
                plan,
                dry_run: args.dry_run,
                report: args.report,
                plot: args.plot,
                workdir: args.workdir,
                style: Style::detect(),
                reaper: Reaper::default(),
                cancel: interrupt_token(None),
                token: None,
            })
            .await?;
            Ok(outcome.exit_code)
        }
        Command::Demo(args) => Ok(crate::demo::run(args).await?),
        Command::Reconcile(args) => Ok(crate::reconcile::run_cli(args).await?),
    }
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
