//! The cutover pipeline: preflight → start B → converge → flip → drain A →
//! stop A → reconcile → verdict, each step timed, printed and recorded.
//!
//! The same pipeline runs a user's plan (`migrator run`) and the demo. This
//! file holds the sequence and the state the steps share; each step lives in
//! the file named as the report names it, as a function that takes the plan
//! (in [`Ctx`]) and what earlier steps learned and returns a typed outcome or
//! a [`StepError`]. Every wait polls until a deadline and can be interrupted
//! (Ctrl-C). The rollback rules are here too; the rollback's actions are in
//! [`rollback`].
//!
//! - [`preflight`], [`start_b`], [`converge`], [`flip`], [`drain_a`],
//!   [`stop_a`], [`reconcile`], [`verdict`]: the steps.
//! - [`rollback`]: stopping B, or flipping back and then stopping B.
//! - [`context`]: what every step may use ([`Ctx`]).
//! - [`load`]: the feeder (in process or external) that runs throughout.
//! - [`progress`]: the step lines and progress lines people read.
//! - [`error`]: why a step failed, by who has to act.

pub mod context;
pub mod converge;
pub mod drain_a;
pub mod error;
pub mod flip;
pub mod load;
pub mod preflight;
pub mod progress;
pub mod reconcile;
pub mod rollback;
pub mod start_b;
pub mod stop_a;
pub mod verdict;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use handover_cli::Style;
use handover_contract::exit;
use tokio_util::sync::CancellationToken;

use crate::faults::{FaultSpec, Moment, Nemesis, Targets};
use crate::health::HealthClient;
use crate::plan::{OnTimeout, Plan};
use crate::process::{Reaper, Started};
use crate::report::{rfc3339_now, MigrationReport, StepOutcome, StepTimer};
use crate::sources::{self, converge::Converge};
use crate::switch::{self, TrafficSwitch};
pub use context::{Ctx, POLL};
pub use error::{RunError, StepError};
use load::{hold, Load};
use progress::Printer;
use reconcile::Against;
use verdict::Outputs;

/// Everything a run needs besides the plan.
pub struct RunOptions {
    pub plan: Plan,
    /// Preflight and the printed plan only.
    pub dry_run: bool,
    pub report: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    /// The HTML report (`--html`).
    pub html: Option<PathBuf>,
    /// Where start-command logs (and the default ack log) go.
    pub workdir: PathBuf,
    pub style: Style,
    /// Tracks processes the start commands leave running. The demo passes an
    /// owning reaper (everything ends with it); `run` a non-owning one, since
    /// B must outlive the migrator.
    pub reaper: Reaper,
    /// Ctrl-C.
    pub cancel: CancellationToken,
    /// The Cloudflare token when not from `CLOUDFLARE_API_TOKEN` (the demo's own edge).
    pub token: Option<crate::switch::cloudflare::Token>,
    /// The live view, when one runs (`crate::live`).
    pub view: Option<crate::live::Attach>,
    /// Faults given on the command line, fired with the plan's `[[faults]]`.
    pub faults: Vec<FaultSpec>,
    /// What the faults reach beyond the plan (the demo's edge admin API).
    pub targets: Targets,
}

/// What the run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: MigrationReport,
    pub exit_code: i32,
}

/// The state a run carries from step to step.
struct Pipeline {
    cx: Ctx,
    switch: Box<dyn TrafficSwitch>,
    outputs: Outputs,
    workdir: PathBuf,
    reaper: Reaper,
    report: MigrationReport,
    /// The ack logs reconciled: the in-process feeder's, or the external
    /// feeders' (`feeder.ack_logs`); the first is where an in-process feeder writes.
    ack_logs: Vec<PathBuf>,
    /// What B's start command left running (stopped on a rollback).
    b_proc: Option<Started>,
    /// Reasons that fail the run whatever the verdict says.
    failures: Vec<String>,
    /// Where the converge step reads B's progress.
    converge: Converge,
    /// The instances A and B answer as: from the plan, their health
    /// documents, or (A) the replies before the flip.
    a_instance: Option<String>,
    b_instance: Option<String>,
    /// Traffic was moved to B and stayed there (no rollback).
    moved: bool,
    /// Faults to fire at chosen steps.
    nemesis: Nemesis,
}

/// The plan's faults and the command line's, checked against the plan.
fn nemesis(plan: &Plan, extra: Vec<FaultSpec>, mut targets: Targets) -> Result<Nemesis, RunError> {
    let mut specs = Vec::new();
    for planned in &plan.faults {
        specs.push(planned.spec().map_err(RunError::Preflight)?);
    }
    for spec in extra {
        plan.check_fault(&spec, "--fault")
            .map_err(|e| RunError::Preflight(e.to_string()))?;
        specs.push(spec);
    }
    if targets.edge_admin.is_none() {
        targets.edge_admin = crate::faults::api::from_env(plan);
    }
    Ok(Nemesis::new(specs, targets))
}

/// The one instance that answered, if exactly one did.
fn only_instance(live: &feeder::Live) -> Option<String> {
    let mut seen = live.by_instance.iter().filter(|(_, n)| **n > 0);
    match (seen.next(), seen.next()) {
        (Some((name, _)), None) => Some(name.clone()),
        _ => None,
    }
}

/// Where traffic goes, for the live view: the record (or the switch) and
/// the origin it points at.
fn target_line(plan: &Plan, origin: &str) -> String {
    let address = if origin == "A" {
        &plan.a.address
    } else {
        &plan.b.address
    };
    let what = match &plan.switch {
        crate::plan::SwitchPlan::Cloudflare(c) => c.record.as_str(),
        crate::plan::SwitchPlan::Command(_) => "traffic",
    };
    format!("{what} → {address} ({origin})")
}

/// Runs the plan. `Err` only for problems found before anything changed.
pub async fn run(opts: RunOptions) -> Result<RunOutcome, RunError> {
    let RunOptions {
        plan,
        dry_run,
        report,
        plot,
        html,
        workdir,
        style,
        reaper,
        cancel,
        token,
        faults,
        targets,
        view,
    } = opts;
    let nemesis = nemesis(&plan, faults, targets)?;
    let switch = switch::from_plan(&plan, token)
        .map_err(|e| RunError::Preflight(preflight::refusal(&e.into())))?;
    let converge = sources::converge::from_plan(&plan).map_err(RunError::Preflight)?;
    let mut ack_logs = plan.feeder.ack_log_list();
    if ack_logs.is_empty() {
        ack_logs.push(workdir.join("acks.jsonl"));
    }
    let mut p = Pipeline {
        cx: Ctx {
            plan,
            health: HealthClient::new(Duration::from_secs(2)),
            out: match view {
                Some(v) => Printer::with_board(style, v.board, v.on_screen),
                None => Printer::new(style),
            },
            cancel,
        },
        switch,
        outputs: Outputs { report, plot, html },
        workdir,
        reaper,
        report: MigrationReport {
            started_at: rfc3339_now(),
            ..MigrationReport::default()
        },
        ack_logs,
        b_proc: None,
        failures: Vec::new(),
        converge,
        a_instance: None,
        b_instance: None,
        moved: false,
        nemesis,
    };
    let step = p.begin("preflight").await;
    match preflight::run(
        &mut p.cx,
        p.switch.as_ref(),
        &p.converge,
        &p.ack_logs[0],
        dry_run,
    )
    .await
    {
        Ok(pre) => {
            p.a_instance = pre.a_instance.clone();
            p.end(step, StepOutcome::Ok, pre.detail()).await;
            p.cx.out.target(target_line(&p.cx.plan, "A"));
        }
        Err(e) => {
            let msg = preflight::refusal(&e);
            p.end(step, StepOutcome::Failed, msg.clone()).await;
            return Err(RunError::Preflight(msg));
        }
    }
    if dry_run {
        p.cx.out
            .line("dry run: preflight passed; nothing was started or changed.");
        return Ok(RunOutcome {
            report: p.report,
            exit_code: exit::OK,
        });
    }
    let load = Load::start(&p.cx, &p.ack_logs[0]).await?;
    Ok(p.cutover(load).await)
}

impl Pipeline {
    /// Starts a step: faults planned before it, its line, faults planned
    /// for its duration.
    async fn begin(&mut self, name: &'static str) -> StepTimer {
        self.fire(Moment::Before, name).await;
        self.cx.out.begin(name);
        let step = StepTimer::start(name);
        self.fire(Moment::During, name).await;
        step
    }

    /// Ends a step: its record, then the faults planned after it.
    async fn end(&mut self, step: StepTimer, outcome: StepOutcome, detail: impl Into<String>) {
        let rec = step.finish(outcome, detail);
        let name = rec.name.clone();
        self.cx.out.end(&rec);
        self.report.steps.push(rec);
        self.fire(Moment::After, &name).await;
    }

    /// Fires the nemesis's faults for `moment` of `step` and says so.
    async fn fire(&mut self, moment: Moment, step: &str) {
        if self.nemesis.is_empty() {
            return;
        }
        let b_pid = self.b_proc.as_mut().and_then(|p| p.running_pid());
        for event in self.nemesis.fire(moment, step, &self.cx.plan, b_pid).await {
            self.cx.out.fault(&event);
        }
    }

    /// The sequence after preflight, with the load running.
    async fn cutover(mut self, load: Load) -> RunOutcome {
        let step = self.begin("start_b").await;
        match start_b::run(&mut self.cx, &self.workdir, &self.reaper, &mut self.b_proc).await {
            Ok(b) => {
                self.b_instance = b.instance.clone();
                match preflight::check_b_sources(&self.cx).await {
                    Ok(seen) => {
                        for line in seen {
                            self.cx.out.note(&format!("read: {line}"));
                        }
                        self.end(step, StepOutcome::Ok, b.detail()).await;
                    }
                    Err(e) => {
                        let why = preflight::refusal(&e);
                        self.end(step, StepOutcome::Failed, why.clone()).await;
                        return self
                            .abort_before_flip(load, format!("B's sources cannot be read: {why}"))
                            .await;
                    }
                }
            }
            Err(e) => {
                self.end(step, StepOutcome::Failed, e.to_string()).await;
                return self
                    .abort_before_flip(load, format!("B did not start: {e}"))
                    .await;
            }
        }

        let step = self.begin("converge").await;
        match converge::run(&mut self.cx, &load, &self.converge).await {
            Ok(c) => {
                let detail = converge::detail(&self.cx.plan.converge, &c);
                self.report.convergence = Some(c);
                self.end(step, StepOutcome::Ok, detail).await;
            }
            Err(e) => {
                self.end(step, StepOutcome::Failed, e.to_string()).await;
                return self
                    .abort_before_flip(load, format!("B did not converge: {e}"))
                    .await;
            }
        }

        // Load on A for the planned time before the flip.
        let until = load.started() + self.cx.plan.feeder.run_before_flip;
        if let Err(e) = hold(&mut self.cx, &load, until, "load on A").await {
            return self.abort_before_flip(load, e.to_string()).await;
        }
        if let Converge::Measured(source) = &self.converge {
            if let (Ok(p), Some(c)) = (source.read().await, self.report.convergence.as_mut()) {
                c.lag_at_flip = p.lag();
            }
        }
        // Before the flip every reply comes from A: that names A's instance
        // when neither the plan nor A's health document did.
        if self.a_instance.is_none() {
            self.a_instance = load.live().and_then(|l| only_instance(&l));
        }

        let failed_at_flip = load.failed();
        let step = self.begin("flip").await;
        match flip::run(self.switch.as_ref(), &self.cx.plan).await {
            Ok(r) => {
                let d = flip::detail(&self.cx.plan, &r);
                self.cx.out.target(target_line(&self.cx.plan, "B"));
                self.end(step, StepOutcome::Ok, d).await;
            }
            Err(e) => {
                let why = e.to_string();
                self.end(step, StepOutcome::Failed, why.clone()).await;
                return match flip::after_failure(self.switch.as_ref(), &self.cx.plan).await {
                    flip::AfterFailure::OnA => {
                        self.abort_before_flip(load, format!("flip failed: {why}"))
                            .await
                    }
                    flip::AfterFailure::Elsewhere(where_) => {
                        self.failures.push(format!(
                            "flip failed: {why}; {where_}: A and B are left running for you to decide"
                        ));
                        self.finish(load, None).await
                    }
                };
            }
        }

        let step = self.begin("drain_a").await;
        let drain = sources::drain::from_plan(&self.cx.plan, self.a_instance.as_deref())
            .map_err(StepError::Plan);
        let drained = match &drain {
            Ok(source) => drain_a::run(&mut self.cx, &load, failed_at_flip, source).await,
            Err(e) => Err(StepError::Plan(e.to_string())),
        };
        match drained {
            Ok(d @ drain_a::Drained::TimedOut(_)) => {
                // A still served at the timeout: stopping it hands its last
                // connections over; the plan says whether that fails the run.
                self.cx.out.warn(&d.detail());
                if self.cx.plan.drain.on_timeout == OnTimeout::Fail {
                    self.failures.push(format!(
                        "drain_a timed out: {} (drain.on_timeout = \"fail\")",
                        d.detail()
                    ));
                }
                self.end(step, StepOutcome::TimedOut, d.detail()).await;
            }
            Ok(d) => self.end(step, StepOutcome::Ok, d.detail()).await,
            Err(e) => {
                self.end(step, StepOutcome::Failed, e.to_string()).await;
                // Rolling back sends traffic to A: only while A can take it.
                let a = self.cx.health.probe(&self.cx.plan.a.health()).await;
                if a.is_healthy() {
                    return self.roll_back(load, e.to_string()).await;
                }
                self.failures.push(format!(
                    "{e}; not rolled back: A is not serving ({}), so traffic stays on B",
                    a.describe()
                ));
            }
        }

        let step = self.begin("stop_a").await;
        let a = self.cx.plan.a.clone();
        match stop_a::stop_origin(&mut self.cx, &a, None).await {
            Ok(d) => self.end(step, StepOutcome::Ok, d).await,
            Err(e) => {
                self.end(step, StepOutcome::Failed, e.to_string()).await;
                self.failures.push(format!("A did not stop: {e}"));
            }
        }

        // Load on B for the planned time.
        let until = Instant::now() + self.cx.plan.feeder.run_after_flip;
        if let Err(e) = hold(&mut self.cx, &load, until, "load on B").await {
            self.failures.push(e.to_string());
        }
        self.moved = true;
        self.finish(load, Some(Against::B)).await
    }

    /// The rollback rule before the flip: stop B, traffic stays on A, the
    /// load is reconciled against A, exit 1.
    async fn abort_before_flip(mut self, load: Load, why: String) -> RunOutcome {
        self.report.rollback = Some(format!("{why}; B stopped, traffic stays on A"));
        let step = self.begin("rollback").await;
        match rollback::stop_b(&mut self.cx, self.b_proc.as_mut()).await {
            Ok(d) => {
                self.end(step, StepOutcome::Ok, format!("traffic stays on A; {d}"))
                    .await
            }
            Err(e) => {
                self.end(step, StepOutcome::Failed, format!("B did not stop: {e}"))
                    .await;
                self.failures.push(format!("B did not stop: {e}"));
            }
        }
        self.finish(load, Some(Against::A)).await
    }

    /// The rollback rule after the flip, B failing: traffic back to A (still
    /// running), B stopped, the load reconciled against A, exit 1. If the
    /// flip back fails, both stay up for a person to decide.
    async fn roll_back(mut self, load: Load, why: String) -> RunOutcome {
        let step = self.begin("rollback").await;
        let back = rollback::flip_back(
            &mut self.cx,
            self.switch.as_ref(),
            &load,
            self.b_proc.as_mut(),
        )
        .await;
        match back {
            Ok(d) => {
                self.cx.out.target(target_line(&self.cx.plan, "A"));
                self.report.rollback = Some(format!("{why}; traffic sent back to A"));
                self.end(step, StepOutcome::Ok, d).await;
                self.finish(load, Some(Against::A)).await
            }
            Err(e) => {
                self.report.rollback = Some(format!("{why}; flipping back to A FAILED: {e}"));
                self.end(step, StepOutcome::Failed, format!("flip back failed: {e}"))
                    .await;
                self.failures
                    .push("traffic could not be sent back to A: A and B are left running".into());
                self.finish(load, None).await
            }
        }
    }

    /// Stops the load, reconciles against the origin left serving (when
    /// one is), gives the verdict.
    async fn finish(mut self, load: Load, against: Option<Against>) -> RunOutcome {
        let run_id = load.run_id(self.cx.plan.feeder.run_id.as_deref());
        let ended = load.finish(&mut self.cx, &self.ack_logs).await;
        self.report.feeder = ended.report;
        self.failures.extend(ended.problem);
        if let (true, Some(b), Some(f)) = (self.moved, &self.b_instance, &self.report.feeder) {
            // Only where replies name their instance at all.
            if !f.instances.is_empty() && f.instances.get(b).copied().unwrap_or(0) == 0 {
                self.failures.push(format!(
                    "B (instance {b}) answered no request: traffic never reached it"
                ));
            }
        }

        if let Some(against) = against {
            let step = self.begin("reconcile").await;
            if let Some(why) = self.cx.plan.reconcile.unreconciled() {
                self.end(step, StepOutcome::Skipped, why.clone()).await;
                self.report.unreconciled = Some(why);
            } else {
                match reconcile::run(&self.cx, &self.ack_logs, against, run_id).await {
                    Ok(r) => {
                        let d = reconcile::detail(&r);
                        self.report.reconcile = Some(r);
                        self.end(step, StepOutcome::Ok, d).await;
                    }
                    Err(e) => {
                        self.end(step, StepOutcome::Failed, e.to_string()).await;
                        self.failures.push(format!("reconcile: {e}"));
                    }
                }
            }
        }

        let step = self.begin("verdict").await;
        self.nemesis.settle().await;
        self.report.faults = self.nemesis.events();
        self.report.finished_at = rfc3339_now();
        let failures = std::mem::take(&mut self.failures);
        verdict::judge(&mut self.report, &self.cx.plan.budgets, failures);
        let outcome = if self.report.passed {
            StepOutcome::Ok
        } else {
            StepOutcome::Failed
        };
        let d = verdict::detail(&self.report);
        self.end(step, outcome, d).await;
        verdict::write_outputs(&self.cx.out, &self.report, &self.outputs, &self.ack_logs);
        RunOutcome {
            exit_code: verdict::exit_code(&self.report),
            report: self.report,
        }
    }
}
