//! The cutover pipeline: preflight → start B → converge → flip → drain A →
//! stop A → reconcile → verdict, each step timed, printed and recorded.
//!
//! The same pipeline runs a user's plan (`migrator run`) and the demo. Every
//! wait polls until a deadline and can be interrupted (Ctrl-C); a failure
//! before the flip stops B and leaves traffic on A, a failing B after the flip
//! sends traffic back to A while A still runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use handover_contract::{exit, FeederReport, Health};
use tokio_util::sync::CancellationToken;

use crate::health::{HealthClient, Probe};
use crate::plan::{fill, FeederMode, Origin, Plan};
use crate::process::{run_shell, Reaper, Started};
use crate::reconcile::{self, ReconcileOptions};
use crate::report::{self, Convergence, MigrationReport, StepOutcome, StepRecord};
use crate::style::{secs, Style};
use crate::switch::{self, SwitchError, TrafficSwitch};

/// How often the waiting steps poll.
const POLL: Duration = Duration::from_millis(100);
/// The longest wait for an external feeder to finish after B took over.
const EXTERNAL_WAIT: Duration = Duration::from_secs(600);
/// How often a waiting step prints its progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Everything a run needs besides the plan.
pub struct RunOptions {
    pub plan: Plan,
    /// Preflight and the printed plan only.
    pub dry_run: bool,
    pub report: Option<PathBuf>,
    pub plot: Option<PathBuf>,
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
}

/// Errors that stop the run before anything was started or changed (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("preflight: {0}")]
    Preflight(String),
}

/// What the run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: MigrationReport,
    pub exit_code: i32,
}

/// Why a step failed; decides what the pipeline does next.
#[derive(Debug)]
struct StepFail(String);

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Prints steps as they start and end, and their progress lines.
struct Printer {
    style: Style,
    last_progress: Option<Instant>,
}

impl Printer {
    fn line(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    }

    fn begin(&mut self, name: &str) {
        self.last_progress = Some(Instant::now());
        self.line(&format!(
            "{} {}",
            self.style.dim("▶"),
            self.style.step(name)
        ));
    }

    fn end(&self, rec: &StepRecord) {
        let mark = match rec.outcome {
            StepOutcome::Ok => self.style.ok("✓"),
            StepOutcome::Failed => self.style.fail("✗"),
            StepOutcome::Skipped => self.style.dim("-"),
        };
        let detail = rec.detail.as_deref().unwrap_or("");
        self.line(&format!(
            "{mark} {} {} {detail}",
            self.style.step(&rec.name),
            self.style
                .dim(&secs(Duration::from_millis(rec.duration_ms))),
        ));
    }

    /// A progress line, at most once per [`PROGRESS_EVERY`].
    fn progress(&mut self, f: impl FnOnce() -> String) {
        let due = self
            .last_progress
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if due {
            self.last_progress = Some(Instant::now());
            self.line(&format!("  {}", self.style.dim(&f())));
        }
    }

    fn warn(&self, s: &str) {
        self.line(&format!("  {} {s}", self.style.warn("warning:")));
    }

    fn note(&self, s: &str) {
        self.line(&format!("  {s}"));
    }
}

/// A step in progress.
struct Running {
    name: &'static str,
    started_at: String,
    started_ns: u64,
    t0: Instant,
}

/// The load: the feeder in process, or an external one's ack log.
enum Load {
    InProcess {
        handle: feeder::Handle,
        started: Instant,
    },
    External {
        started: Instant,
        /// Files older than this belong to an earlier run.
        since: SystemTime,
    },
}

impl Load {
    fn started(&self) -> Instant {
        match self {
            Load::InProcess { started, .. } | Load::External { started, .. } => *started,
        }
    }

    fn live(&self) -> Option<feeder::Live> {
        match self {
            Load::InProcess { handle, .. } => Some(handle.live()),
            Load::External { .. } => None,
        }
    }
}

fn failed_of(l: &feeder::Live) -> u64 {
    l.rejected + l.indeterminate
}

fn load_line(l: &feeder::Live) -> String {
    let by: Vec<String> = l
        .by_instance
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "load: sent {} ok {} failed {} missed {} [{}]",
        l.sent,
        l.ok,
        failed_of(l),
        l.missed,
        by.join(" ")
    )
}

struct Pipeline {
    plan: Plan,
    opts_report: Option<PathBuf>,
    opts_plot: Option<PathBuf>,
    workdir: PathBuf,
    reaper: Reaper,
    cancel: CancellationToken,
    switch: Box<dyn TrafficSwitch>,
    health: HealthClient,
    printer: Printer,
    report: MigrationReport,
    ack_log: PathBuf,
    b_proc: Option<Started>,
    /// Reasons that fail the run whatever the verdict says.
    failures: Vec<String>,
}

/// Runs the plan. `Err` only for problems found before anything changed.
pub async fn run(opts: RunOptions) -> Result<RunOutcome, RunError> {
    let RunOptions {
        plan,
        dry_run,
        report,
        plot,
        workdir,
        style,
        reaper,
        cancel,
        token,
    } = opts;
    let switch =
        switch::from_plan(&plan, token).map_err(|e| RunError::Preflight(switch_msg(&e)))?;
    let ack_log = plan
        .feeder
        .ack_log
        .clone()
        .unwrap_or_else(|| workdir.join("acks.jsonl"));
    let mut p = Pipeline {
        health: HealthClient::new(Duration::from_secs(2)),
        printer: Printer {
            style,
            last_progress: None,
        },
        report: MigrationReport {
            started_at: rfc3339_now(),
            ..MigrationReport::default()
        },
        plan,
        opts_report: report,
        opts_plot: plot,
        workdir,
        reaper,
        cancel,
        switch,
        ack_log,
        b_proc: None,
        failures: Vec::new(),
    };
    p.preflight(dry_run).await?;
    if dry_run {
        p.printer
            .line("dry run: preflight passed; nothing was started or changed.");
        return Ok(RunOutcome {
            report: p.report,
            exit_code: exit::OK,
        });
    }
    let load = p.start_load().await?;
    Ok(p.cutover(load).await)
}

fn switch_msg(e: &SwitchError) -> String {
    match e {
        SwitchError::Config(m) => format!("switch: {m}"),
        other => format!("switch: {other}"),
    }
}

impl Pipeline {
    fn begin(&mut self, name: &'static str) -> Running {
        self.printer.begin(name);
        Running {
            name,
            started_at: rfc3339_now(),
            started_ns: unix_ns(),
            t0: Instant::now(),
        }
    }

    fn end(&mut self, r: Running, outcome: StepOutcome, detail: impl Into<String>) {
        let detail = detail.into();
        let rec = StepRecord {
            name: r.name.to_string(),
            started_at: r.started_at,
            started_ns: r.started_ns,
            duration_ms: u64::try_from(r.t0.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome,
            detail: (!detail.is_empty()).then_some(detail),
        };
        self.printer.end(&rec);
        self.report.steps.push(rec);
    }

    /// Sleeps one poll interval; `Err` when interrupted.
    async fn tick(&self) -> Result<(), StepFail> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(StepFail("interrupted (Ctrl-C)".into())),
            _ = tokio::time::sleep(POLL) => Ok(()),
        }
    }

    // ---------------------------------------------------------------- preflight

    async fn preflight(&mut self, dry_run: bool) -> Result<(), RunError> {
        let step = self.begin("preflight");
        match self.preflight_checks(dry_run).await {
            Ok(detail) => {
                self.end(step, StepOutcome::Ok, detail);
                Ok(())
            }
            Err(msg) => {
                self.end(step, StepOutcome::Failed, msg.clone());
                Err(RunError::Preflight(msg))
            }
        }
    }

    async fn preflight_checks(&mut self, dry_run: bool) -> Result<String, String> {
        let plan = self.plan.clone();
        let a = self.health.probe(&plan.a.health()).await;
        if !a.is_healthy() {
            return Err(format!(
                "A ({}) is not healthy: {}",
                plan.a.health(),
                a.describe()
            ));
        }
        let state = self.switch.check().await.map_err(|e| switch_msg(&e))?;
        if state.current != plan.a.address {
            return Err(format!(
                "traffic goes to {}, not to A ({}): {}",
                state.current, plan.a.address, state.detail
            ));
        }
        let b = self.health.probe(&plan.b.health()).await;
        if !matches!(b, Probe::Down(_)) {
            return Err(format!(
                "B ({}) is already serving ({}): stop it or fix the plan",
                plan.b.health(),
                b.describe()
            ));
        }
        if plan.feeder.mode == FeederMode::InProcess {
            if let Some(dir) = self.ack_log.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(format!(
                        "feeder.ack_log: directory {} does not exist",
                        dir.display()
                    ));
                }
            }
        }
        if plan.host_checks.enabled && plan.feeder.mode == FeederMode::InProcess {
            let cap = plan
                .feeder
                .max_in_flight
                .map(|n| n as u64)
                .unwrap_or_else(|| {
                    (plan.feeder.rate * plan.feeder.timeout.as_secs_f64())
                        .ceil()
                        .max(1.0) as u64
                });
            for f in crate::host::judge(&crate::host::Limits::read(), cap, plan.feeder.rate) {
                if f.fatal {
                    return Err(format!("host: {}", f.message));
                }
                self.printer.warn(&f.message);
            }
        }
        let a_h = a.health().map(|h| h.instance.clone()).unwrap_or_default();
        self.print_plan(&state.detail, dry_run);
        Ok(format!(
            "A healthy (instance {a_h}); {}; B not serving",
            state.detail
        ))
    }

    fn print_plan(&self, switch_detail: &str, dry_run: bool) {
        let p = &self.plan;
        let pr = &self.printer;
        pr.note(&format!(
            "switch: {} — {switch_detail}",
            self.switch.describe()
        ));
        pr.note(&format!("A: {} ({})", p.a.address, p.a.url));
        pr.note(&format!(
            "B: {} ({}), start: {}",
            p.b.address,
            p.b.url,
            crate::redact::passwords(p.b.start.as_deref().unwrap_or("-"))
        ));
        match p.feeder.mode {
            FeederMode::InProcess => pr.note(&format!(
                "load: {}/s to {} for {} before the flip and {} after the drain; ack log {}",
                p.feeder.rate,
                p.feeder.target.as_ref().map(|u| u.as_str()).unwrap_or("-"),
                secs(p.feeder.run_before_flip),
                secs(p.feeder.run_after_flip),
                self.ack_log.display()
            )),
            FeederMode::External => pr.note(&format!(
                "load: external feeder, ack log {}",
                self.ack_log.display()
            )),
        }
        pr.note(&format!(
            "budgets: failed ≤ {}, gap ≤ {} ms, missed ≤ {}",
            p.budgets.failed, p.budgets.max_gap_ms, p.budgets.missed
        ));
        if dry_run {
            pr.line("--- plan ---");
            pr.line(p.to_toml().trim_end());
            pr.line("------------");
        }
    }

    // --------------------------------------------------------------- the load

    async fn start_load(&mut self) -> Result<Load, RunError> {
        let f = self.plan.feeder.clone();
        match f.mode {
            FeederMode::External => Ok(Load::External {
                started: Instant::now(),
                since: SystemTime::now(),
            }),
            FeederMode::InProcess => {
                let Some(target) = f.target.clone() else {
                    return Err(RunError::Preflight("feeder.target: missing".into()));
                };
                let mut o = feeder::Options::new(target, f.rate);
                o.timeout = f.timeout;
                o.max_in_flight = f.max_in_flight;
                o.ack_log = Some(self.ack_log.clone());
                if let Some(id) = &f.run_id {
                    o.run_id = id.clone();
                }
                o.resolve = f.resolve.iter().map(|(h, a)| (h.clone(), *a)).collect();
                o.workload = feeder::Workload::Orders {
                    users: feeder::UserSource::FromApp,
                };
                o.progress = feeder::Progress::Off;
                let run_id = o.run_id.clone();
                let handle = feeder::start(o)
                    .await
                    .map_err(|e| RunError::Preflight(format!("feeder: {e}")))?;
                self.printer
                    .note(&format!("load started: {}/s, run id {run_id}", f.rate));
                Ok(Load::InProcess {
                    handle,
                    started: Instant::now(),
                })
            }
        }
    }

    /// Ends the load and returns its report (in process) or reads the
    /// external feeder's once its ack log has stopped growing.
    async fn finish_load(&mut self, load: Load) -> Option<FeederReport> {
        match load {
            Load::InProcess { handle, .. } => {
                handle.stop();
                match handle.finish().await {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.failures.push(format!("feeder: {e}"));
                        None
                    }
                }
            }
            Load::External { since, .. } => match self.plan.feeder.report.clone() {
                // The report is written last, after the ack log is flushed:
                // the one sure sign that the external feeder is done.
                Some(path) => self.wait_external_report(&path, since).await,
                None => {
                    self.wait_ack_log_quiet().await;
                    None
                }
            },
        }
    }

    async fn wait_external_report(
        &mut self,
        path: &Path,
        since: SystemTime,
    ) -> Option<FeederReport> {
        let deadline = Instant::now() + EXTERNAL_WAIT;
        let mut last_err = String::from("not written yet");
        loop {
            let fresh = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if fresh {
                match std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<FeederReport>(&b).map_err(|e| e.to_string())
                    }) {
                    Ok(r) => return Some(r),
                    // Possibly caught mid-write: try again.
                    Err(e) => last_err = e,
                }
            }
            if Instant::now() >= deadline || self.tick().await.is_err() {
                self.failures.push(format!(
                    "the external feeder's report {} did not appear ({last_err}); reconciled what the ack log had",
                    path.display()
                ));
                return None;
            }
            self.printer.progress(|| {
                format!(
                    "waiting for the external feeder to finish (its report {})",
                    path.display()
                )
            });
        }
    }

    async fn wait_ack_log_quiet(&mut self) {
        // Feeders buffer their ack log: only a long silence means "done".
        let quiet =
            (self.plan.feeder.timeout * 2 + Duration::from_secs(1)).max(Duration::from_secs(10));
        self.printer.warn(&format!(
            "no feeder.report: taking {} without ack-log growth as the end of the external load",
            secs(quiet)
        ));
        let deadline = Instant::now() + EXTERNAL_WAIT;
        let mut last = (file_len(&self.ack_log), Instant::now());
        while Instant::now() < deadline && last.1.elapsed() < quiet {
            if self.tick().await.is_err() {
                break;
            }
            let len = file_len(&self.ack_log);
            if len != last.0 {
                last = (len, Instant::now());
            }
            self.printer
                .progress(|| format!("ack log {} bytes, quiet {}", last.0, secs(last.1.elapsed())));
        }
    }

    /// Lets the load run (watching nothing but Ctrl-C) until `until`.
    async fn hold(&mut self, load: &Load, until: Instant, what: &str) -> Result<(), StepFail> {
        while Instant::now() < until {
            self.tick().await?;
            let left = until.saturating_duration_since(Instant::now());
            let line = load.live().map(|l| load_line(&l)).unwrap_or_default();
            self.printer
                .progress(|| format!("{what}: {} left; {line}", secs(left)));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- cutover

    async fn cutover(mut self, load: Load) -> RunOutcome {
        let plan = self.plan.clone();

        // start B
        let step = self.begin("start_b");
        match self.start_b().await {
            Ok(d) => self.end(step, StepOutcome::Ok, d),
            Err(StepFail(why)) => {
                self.end(step, StepOutcome::Failed, why.clone());
                return self
                    .abort_before_flip(load, format!("B did not start: {why}"))
                    .await;
            }
        }

        // converge
        let step = self.begin("converge");
        let t_conv = Instant::now();
        match self.converge(&load).await {
            Ok(c) => {
                let detail = format!(
                    "B within {} of the head for {} (lag max {})",
                    plan.converge.max_lag,
                    secs(plan.converge.stable_for),
                    c.lag_max
                );
                self.report.convergence = Some(Convergence {
                    duration_ms: t_conv.elapsed().as_millis() as u64,
                    ..c
                });
                self.end(step, StepOutcome::Ok, detail);
            }
            Err(StepFail(why)) => {
                self.end(step, StepOutcome::Failed, why.clone());
                return self
                    .abort_before_flip(load, format!("B did not converge: {why}"))
                    .await;
            }
        }

        // Load on A for the planned time before the flip.
        let until = load.started() + plan.feeder.run_before_flip;
        if let Err(StepFail(why)) = self.hold(&load, until, "load on A").await {
            return self.abort_before_flip(load, why).await;
        }
        if let Probe::Healthy(h) = self.health.probe(&plan.b.health()).await {
            if let Some(c) = self.report.convergence.as_mut() {
                c.lag_at_flip = h.head.saturating_sub(h.applied);
            }
        }

        // flip
        let failed_at_flip = load.live().map(|l| failed_of(&l)).unwrap_or(0);
        let step = self.begin("flip");
        match self.switch.flip(&plan.a.address, &plan.b.address).await {
            Ok(r) => {
                let mut d = format!(
                    "{} → {} ({} API call{})",
                    plan.a.address,
                    plan.b.address,
                    r.attempts,
                    if r.attempts == 1 { "" } else { "s" }
                );
                if !r.retries.is_empty() {
                    d.push_str(&format!("; retried: {}", r.retries.join(", ")));
                }
                self.end(step, StepOutcome::Ok, d);
            }
            Err(e) => {
                let why = e.to_string();
                self.end(step, StepOutcome::Failed, why.clone());
                return match self.switch.current().await {
                    Ok(cur) if cur == plan.a.address => {
                        self.abort_before_flip(load, format!("flip failed: {why}"))
                            .await
                    }
                    cur => {
                        let where_ = match cur {
                            Ok(c) => format!("traffic now goes to {c}"),
                            Err(e) => format!("the switch cannot be read ({e})"),
                        };
                        self.failures.push(format!(
                            "flip failed: {why}; {where_}: A and B are left running for you to decide"
                        ));
                        self.finish(load, None).await
                    }
                };
            }
        }

        // drain A, watching B
        let step = self.begin("drain_a");
        match self.drain_a(&load, failed_at_flip).await {
            Ok(d) => self.end(step, StepOutcome::Ok, d),
            Err(StepFail(why)) => {
                self.end(step, StepOutcome::Failed, why.clone());
                return self.roll_back(load, why).await;
            }
        }

        // stop A
        let step = self.begin("stop_a");
        match self.stop_origin(&plan.a, None).await {
            Ok(d) => self.end(step, StepOutcome::Ok, d),
            Err(StepFail(why)) => {
                self.end(step, StepOutcome::Failed, why.clone());
                self.failures.push(format!("A did not stop: {why}"));
            }
        }

        // Load on B for the planned time.
        let until = Instant::now() + plan.feeder.run_after_flip;
        if let Err(StepFail(why)) = self.hold(&load, until, "load on B").await {
            self.failures.push(why);
        }
        let b_url = plan.b.url.clone();
        self.finish(load, Some(b_url)).await
    }

    /// Stops the load, reconciles against `app` (when given), gives the verdict.
    async fn finish(mut self, load: Load, app: Option<url::Url>) -> RunOutcome {
        let feeder_report = self.finish_load(load).await;
        self.report.feeder = feeder_report;

        if let Some(app) = app {
            let step = self.begin("reconcile");
            let style = self.printer.style;
            let last = std::sync::Mutex::new(None::<Instant>);
            let progress: reconcile::ProgressFn =
                std::sync::Arc::new(move |p: &reconcile::Progress| {
                    let line = match p {
                        reconcile::Progress::Applying { applied, head } => {
                            // Reported on every poll: one line per second is enough.
                            let Ok(mut last) = last.lock() else { return };
                            if last.is_some_and(|t: Instant| t.elapsed() < PROGRESS_EVERY) {
                                return;
                            }
                            *last = Some(Instant::now());
                            format!("waiting for B to apply the head: {applied} of {head}")
                        }
                        reconcile::Progress::Indexed { acks, distinct } => {
                            format!("ack log indexed: {acks} lines, {distinct} ids")
                        }
                        reconcile::Progress::Fetched { orders } => {
                            format!("B's orders read: {orders}")
                        }
                    };
                    println!("  {}", style.dim(&line));
                });
            let opts = ReconcileOptions {
                apply_timeout: self.plan.timeouts.reconcile,
                progress: Some(progress),
                ..ReconcileOptions::default()
            };
            match reconcile::reconcile(&self.ack_log, &app, &opts).await {
                Ok(r) => {
                    let d = format!(
                        "ok {} lost {} unexpected {} recovered {} duplicated {} mismatched {}",
                        r.ok, r.lost, r.unexpected, r.recovered, r.duplicated, r.mismatched
                    );
                    self.report.reconcile = Some(r);
                    self.end(step, StepOutcome::Ok, d);
                }
                Err(e) => {
                    self.end(step, StepOutcome::Failed, e.to_string());
                    self.failures.push(format!("reconcile: {e}"));
                }
            }
        }

        let step = self.begin("verdict");
        self.report.finished_at = rfc3339_now();
        report::verdict(&mut self.report, &self.plan.budgets);
        if self.report.rollback.is_some() {
            // The verdict names the rollback among its reasons.
            self.report.passed = false;
        }
        if !self.failures.is_empty() {
            self.report.passed = false;
            let mut f = std::mem::take(&mut self.failures);
            f.append(&mut self.report.reasons);
            self.report.reasons = f;
        }
        let outcome = if self.report.passed {
            StepOutcome::Ok
        } else {
            StepOutcome::Failed
        };
        let d = if self.report.passed {
            "passed".to_string()
        } else {
            format!("failed: {}", self.report.reasons.join("; "))
        };
        self.end(step, outcome, d);
        self.write_outputs();
        RunOutcome {
            exit_code: if self.report.passed {
                exit::OK
            } else {
                exit::FAILED
            },
            report: self.report,
        }
    }

    fn write_outputs(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out);
        if let Err(e) = report::print_human(&self.report, &mut out, self.printer.style.color) {
            tracing::warn!(error = %e, "cannot print the report");
        }
        let _ = out.flush();
        drop(out);
        if let Some(path) = self.opts_report.clone() {
            let res = serde_json::to_vec_pretty(&self.report)
                .map_err(|e| e.to_string())
                .and_then(|b| std::fs::write(&path, b).map_err(|e| e.to_string()));
            match res {
                Ok(()) => self.printer.note(&format!("report: {}", path.display())),
                Err(e) => self
                    .printer
                    .warn(&format!("cannot write report {}: {e}", path.display())),
            }
        }
        if let Some(path) = self.opts_plot.clone() {
            match crate::plot::render_report(&self.ack_log, &self.report, &path) {
                Ok(()) => self.printer.note(&format!("plot: {}", path.display())),
                Err(e) => self
                    .printer
                    .warn(&format!("cannot draw plot {}: {e}", path.display())),
            }
        }
    }

    // ------------------------------------------------------------ the steps

    async fn start_b(&mut self) -> Result<String, StepFail> {
        let b = self.plan.b.clone();
        let cmd = fill(
            b.start.as_deref().unwrap_or_default(),
            &[
                ("address", &b.address),
                ("url", b.url.as_str()),
                ("name", "b"),
            ],
        );
        let log = self.workdir.join("b-start.log");
        let proc =
            Started::spawn(&cmd, &log, Some(&self.reaper)).map_err(|e| StepFail(e.to_string()))?;
        self.b_proc = Some(proc);
        let deadline = Instant::now() + self.plan.timeouts.health;
        loop {
            if let Some(p) = self.b_proc.as_mut() {
                if let crate::process::StartState::Failed(why) = p.state() {
                    return Err(StepFail(format!("start command {why}")));
                }
            }
            let probe = self.health.probe(&b.health()).await;
            if probe.is_healthy() {
                let inst = probe
                    .health()
                    .map(|h| h.instance.clone())
                    .unwrap_or_default();
                let pid = self
                    .b_proc
                    .as_mut()
                    .and_then(|p| p.running_pid())
                    .map(|p| format!(", pid {p}"))
                    .unwrap_or_default();
                return Ok(format!("B healthy (instance {inst}{pid})"));
            }
            if Instant::now() >= deadline {
                return Err(StepFail(format!(
                    "B not healthy within {}: {}",
                    secs(self.plan.timeouts.health),
                    probe.describe()
                )));
            }
            self.printer
                .progress(|| format!("waiting for B's health: {}", probe.describe()));
            self.tick().await?;
        }
    }

    async fn converge(&mut self, load: &Load) -> Result<Convergence, StepFail> {
        let plan = self.plan.clone();
        let deadline = Instant::now() + plan.timeouts.converge;
        let mut lag_max = 0u64;
        let mut reached_head = false;
        let mut within_since: Option<Instant> = None;
        loop {
            let probe = self.health.probe(&plan.b.health()).await;
            let h: Option<Health> = probe.health().cloned();
            match h {
                Some(h) => {
                    let lag = h.head.saturating_sub(h.applied);
                    lag_max = lag_max.max(lag);
                    if h.applied >= h.head {
                        reached_head = true;
                    }
                    if lag <= plan.converge.max_lag && reached_head && !h.draining {
                        let since = *within_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= plan.converge.stable_for {
                            return Ok(Convergence {
                                duration_ms: 0,
                                lag_max,
                                lag_at_flip: lag,
                            });
                        }
                    } else {
                        within_since = None;
                    }
                    let line = load.live().map(|l| load_line(&l)).unwrap_or_default();
                    self.printer.progress(|| {
                        format!(
                            "B applied {} head {} lag {lag} (max {lag_max}); {line}",
                            h.applied, h.head
                        )
                    });
                }
                None => {
                    within_since = None;
                    self.printer.progress(|| format!("B: {}", probe.describe()));
                }
            }
            if Instant::now() >= deadline {
                return Err(StepFail(format!(
                    "not within {} of the head for {} after {} (lag max {lag_max}; last: {})",
                    plan.converge.max_lag,
                    secs(plan.converge.stable_for),
                    secs(plan.timeouts.converge),
                    probe.describe()
                )));
            }
            self.tick().await?;
        }
    }

    /// Waits until A is quiet, watching B and the load; `Err` means roll back.
    async fn drain_a(&mut self, load: &Load, failed_at_flip: u64) -> Result<String, StepFail> {
        let plan = self.plan.clone();
        let t0 = Instant::now();
        let deadline = t0 + plan.timeouts.drain;
        let mut last_total: Option<u64> = None;
        let mut moved_at = Instant::now();
        let mut b_bad_since: Option<Instant> = None;
        let allowed = plan.watch_failed();
        loop {
            // Watch B.
            let b = self.health.probe(&plan.b.health()).await;
            if b.is_healthy() {
                b_bad_since = None;
            } else {
                let since = *b_bad_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= plan.watch.unhealthy_for {
                    return Err(StepFail(format!(
                        "B failing after the flip for {}: {}",
                        secs(since.elapsed()),
                        b.describe()
                    )));
                }
            }
            if let Some(l) = load.live() {
                let failed = failed_of(&l).saturating_sub(failed_at_flip);
                if failed > allowed {
                    return Err(StepFail(format!(
                        "{failed} requests failed after the flip (watch budget {allowed})"
                    )));
                }
            }
            // Watch A.
            let a = self.health.probe(&plan.a.health()).await;
            match a.health() {
                Some(h) => {
                    if last_total != Some(h.requests_total) {
                        last_total = Some(h.requests_total);
                        moved_at = Instant::now();
                    }
                    let quiet_for = moved_at.elapsed();
                    if quiet_for >= plan.drain.quiet && h.in_flight == 0 {
                        return Ok(format!(
                            "A quiet for {} (requests_total {}, in_flight 0)",
                            secs(quiet_for),
                            h.requests_total
                        ));
                    }
                    let line = load.live().map(|l| load_line(&l)).unwrap_or_default();
                    self.printer.progress(|| {
                        format!(
                            "A requests_total {} in_flight {} quiet {}; {line}",
                            h.requests_total,
                            h.in_flight,
                            secs(quiet_for)
                        )
                    });
                }
                None => {
                    // A no longer answers: nothing more can reach it.
                    return Ok(format!("A stopped answering ({})", a.describe()));
                }
            }
            if Instant::now() >= deadline {
                let msg = format!(
                    "A still served requests after {}; stopping it gracefully hands its last connections to B",
                    secs(plan.timeouts.drain)
                );
                self.printer.warn(&msg);
                return Ok(msg);
            }
            self.tick().await?;
        }
    }

    /// Runs `origin`'s stop command and waits until its health no longer answers.
    async fn stop_origin(
        &mut self,
        origin: &Origin,
        proc: Option<&mut Started>,
    ) -> Result<String, StepFail> {
        let mut proc = proc;
        if let Probe::Down(why) = self.health.probe(&origin.health()).await {
            let gone = proc.as_mut().is_none_or(|p| p.running_pid().is_none());
            if gone {
                return Ok(format!("{} was already down ({why})", origin.address));
            }
        }
        let pid = proc
            .as_mut()
            .and_then(|p| p.running_pid())
            .map(|p| p.to_string())
            .unwrap_or_default();
        match &origin.stop {
            Some(stop) => {
                let cmd = fill(
                    stop,
                    &[
                        ("address", &origin.address),
                        ("url", origin.url.as_str()),
                        ("pid", &pid),
                    ],
                );
                run_shell(&cmd, self.plan.timeouts.stop)
                    .await
                    .map_err(|e| StepFail(e.to_string()))?;
            }
            None => match proc.as_mut().and_then(|p| p.running_pid()) {
                Some(p) => {
                    crate::process::signal(p, nix::sys::signal::Signal::SIGTERM);
                }
                None => return Err(StepFail("no stop command and no process to signal".into())),
            },
        }
        let deadline = Instant::now() + self.plan.timeouts.stop;
        loop {
            let probe = self.health.probe(&origin.health()).await;
            if let Probe::Down(_) = probe {
                if let Some(p) = proc.as_mut() {
                    p.wait_exit(Duration::from_secs(5)).await;
                }
                return Ok(format!("{} no longer answers", origin.address));
            }
            if Instant::now() >= deadline {
                return Err(StepFail(format!(
                    "still answering {} after the stop command: {}",
                    secs(self.plan.timeouts.stop),
                    probe.describe()
                )));
            }
            self.printer.progress(|| {
                format!(
                    "waiting for {} to stop: {}",
                    origin.address,
                    probe.describe()
                )
            });
            // Stopping is not interrupted: a half-stopped origin helps nobody.
            tokio::time::sleep(POLL).await;
        }
    }

    async fn stop_b(&mut self) -> Result<String, StepFail> {
        let b = self.plan.b.clone();
        let mut proc = self.b_proc.take();
        let r = self.stop_origin(&b, proc.as_mut()).await;
        self.b_proc = proc;
        r
    }

    /// Before the flip: stop B, traffic stays on A, exit 1.
    async fn abort_before_flip(mut self, load: Load, why: String) -> RunOutcome {
        self.report.rollback = Some(format!("{why}; B stopped, traffic stays on A"));
        let step = self.begin("rollback");
        match self.stop_b().await {
            Ok(d) => self.end(step, StepOutcome::Ok, format!("traffic stays on A; {d}")),
            Err(StepFail(e)) => {
                self.end(step, StepOutcome::Failed, format!("B did not stop: {e}"));
                self.failures.push(format!("B did not stop: {e}"));
            }
        }
        let a_url = self.plan.a.url.clone();
        self.finish(load, Some(a_url)).await
    }

    /// After the flip, B failing: traffic back to A (still running), B stopped.
    async fn roll_back(mut self, load: Load, why: String) -> RunOutcome {
        let plan = self.plan.clone();
        let step = self.begin("rollback");
        match self.switch.flip(&plan.b.address, &plan.a.address).await {
            Ok(_) => {
                self.report.rollback = Some(format!("{why}; traffic sent back to A"));
                // Let in-flight routing settle on A before B goes away.
                let _ = self
                    .hold(&load, Instant::now() + plan.drain.quiet, "back on A")
                    .await;
                let stopped = self.stop_b().await;
                let d = match stopped {
                    Ok(d) => format!("{} → {}; {d}", plan.b.address, plan.a.address),
                    Err(StepFail(e)) => format!(
                        "{} → {}; B did not stop: {e}",
                        plan.b.address, plan.a.address
                    ),
                };
                self.end(step, StepOutcome::Ok, d);
                let a_url = plan.a.url.clone();
                self.finish(load, Some(a_url)).await
            }
            Err(e) => {
                self.report.rollback = Some(format!("{why}; flipping back to A FAILED: {e}"));
                self.end(step, StepOutcome::Failed, format!("flip back failed: {e}"));
                self.failures
                    .push("traffic could not be sent back to A: A and B are left running".into());
                self.finish(load, None).await
            }
        }
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
