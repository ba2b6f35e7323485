//! Step 1, preflight: everything the cutover relies on is checked before
//! anything is started or changed — A healthy, the switch readable and
//! pointing at A, B not already serving, the ack log's directory there, this
//! host able to carry the load. A refusal here is exit 2.

use std::path::Path;

use handover_cli::secs;

use super::context::Ctx;
use super::error::StepError;
use crate::health::Probe;
use crate::host::{self, Level};
use crate::plan::FeederMode;
use crate::plan::Plan;
use crate::reconcile::ReconcileOptions;
use crate::sources::converge::Converge;
use crate::sources::drain::{self, Drain};
use crate::sources::reconcile::{self as source, ReconcilePlan, StoredOrders};
use crate::sources::{served_by, SourceError};
use crate::switch::{SwitchError, SwitchState, TrafficSwitch};

/// What preflight learned.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// The instance A answers as (the plan's, else its health document's).
    pub a_instance: Option<String>,
    pub switch: SwitchState,
}

impl Preflight {
    pub fn detail(&self) -> String {
        let a = match &self.a_instance {
            Some(i) => format!("A healthy (instance {i})"),
            None => "A healthy".to_string(),
        };
        format!("{a}; {}; B not serving", self.switch.detail)
    }
}

/// Runs the checks and prints the plan (in full when `dry_run`).
pub async fn run(
    cx: &mut Ctx,
    switch: &dyn TrafficSwitch,
    converge: &Converge,
    ack_log: &Path,
    dry_run: bool,
) -> Result<Preflight, StepError> {
    let plan = &cx.plan;
    let a = cx.health.probe(&plan.a.health()).await;
    if !a.is_healthy() {
        return Err(StepError::Service(format!(
            "A ({}) is not healthy: {}",
            plan.a.health(),
            a.describe()
        )));
    }
    if plan.host_checks.enabled {
        check_hosts(cx, dry_run).await?;
    }
    let plan = &cx.plan;
    let state = switch.check().await?;
    if state.current != plan.a.address {
        return Err(StepError::Service(format!(
            "traffic goes to {}, not to A ({}): {}",
            state.current, plan.a.address, state.detail
        )));
    }
    let b = cx.health.probe(&plan.b.health()).await;
    if !matches!(b, Probe::Down(_)) {
        return Err(StepError::Service(format!(
            "B ({}) is already serving ({}): stop it or fix the plan",
            plan.b.health(),
            b.describe()
        )));
    }
    if plan.feeder.mode == FeederMode::InProcess {
        if let Some(dir) = ack_log.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(StepError::Plan(format!(
                    "feeder.ack_log: directory {} does not exist",
                    dir.display()
                )));
            }
        }
    }
    let a_instance = plan
        .a
        .instance
        .clone()
        .or_else(|| a.instance().map(str::to_string));
    let seen = check_sources(cx, converge).await?;
    print_plan(cx, switch, &state.detail, ack_log, dry_run);
    for line in seen {
        cx.out.note(&format!("read: {line}"));
    }
    Ok(Preflight {
        a_instance,
        switch: state,
    })
}

/// This machine and, over ssh, A, B and the store against the planned
/// load: fatal findings refuse the run, warnings too with `strict`.
async fn check_hosts(cx: &Ctx, dry_run: bool) -> Result<(), StepError> {
    let plan = &cx.plan;
    let (load, findings) = host::check(plan)
        .await
        .map_err(|e| StepError::Host(e.to_string()))?;
    if dry_run || !load.loopback {
        cx.out.note(&format!(
            "host checks at {}/s, timeout {}, in flight ≤ {}{}:",
            load.rate,
            secs(load.timeout),
            load.concurrency,
            if load.loopback {
                " (loopback only)"
            } else {
                ""
            }
        ));
        for line in host::table(&findings) {
            cx.out.line(&format!("  {line}"));
        }
    }
    if let Some(f) = findings.iter().find(|f| f.level == Level::Fatal) {
        return Err(StepError::Host(f.message()));
    }
    let warned: Vec<_> = findings.iter().filter(|f| f.level == Level::Warn).collect();
    if plan.host_checks.strict && !warned.is_empty() {
        return Err(StepError::Host(format!(
            "{} warning(s) and --strict (host_checks.strict): {}",
            warned.len(),
            warned[0].message()
        )));
    }
    for f in warned {
        cx.out.warn(&f.message());
    }
    Ok(())
}

/// Reads every source the plan chose that can be read before B runs — a
/// metric that does not exist or a pointer that resolves to nothing is
/// refused now, not halfway through the cutover — and says what was read.
async fn check_sources(cx: &Ctx, converge: &Converge) -> Result<Vec<String>, StepError> {
    let plan = &cx.plan;
    let mut seen = Vec::new();
    match converge {
        Converge::Measured(s) => {
            seen.push(format!("converge from {}", s.describe()));
            seen.extend(s.preflight(&plan.b).await?);
        }
        Converge::Wait(d) => seen.push(format!("converge: wait {} (nothing measured)", secs(*d))),
    }
    // A's instance may still be learned from the replies before the flip.
    match drain::from_plan(plan, Some(plan.a.instance.as_deref().unwrap_or("A")))
        .map_err(StepError::Plan)?
    {
        Drain::Measured(s) => {
            seen.push(format!("drain from {}", s.describe()));
            seen.extend(s.preflight().await?);
        }
        Drain::Wait(d) => seen.push(format!("drain: wait {} (nothing measured)", secs(d))),
    }
    match stored_orders(plan)? {
        None => seen.push("reconcile: none (nothing will prove storage)".into()),
        Some(s) if reads_b(plan) => {
            seen.push(format!(
                "reconcile from {} (read once B is up)",
                s.describe()
            ));
        }
        Some(s) => {
            seen.push(format!("reconcile from {}", s.describe()));
            match s.check(plan.feeder.run_id.as_deref()).await {
                Ok(line) => seen.push(format!("reconcile: {line}")),
                // A command may read B, which is not there yet.
                Err(e) if s.kind() == "command" => cx.out.warn(&format!(
                    "{e} (B is not running yet: checked again once it is)"
                )),
                Err(e) => return Err(StepError::Source(e)),
            }
        }
    }
    Ok(seen)
}

/// The plan's reconcile reader (`None` for `kind = "none"`).
fn stored_orders(plan: &Plan) -> Result<Option<Box<dyn StoredOrders>>, StepError> {
    source::from_plan(&plan.reconcile, &plan.b.url, &ReconcileOptions::default())
        .map_err(|e| StepError::Plan(e.to_string()))
}

/// Whether the reconcile source is served by B (so not readable before B runs).
fn reads_b(plan: &Plan) -> bool {
    match &plan.reconcile {
        ReconcilePlan::ExampleApp => true,
        ReconcilePlan::Http(l) => served_by(&l.url, &plan.b),
        _ => false,
    }
}

/// Right after B is up: reads the sources preflight could not (B's listing,
/// a command that reads B), so a pointer that resolves to nothing stops the
/// run before the flip, not at its end.
pub async fn check_b_sources(cx: &Ctx) -> Result<Vec<String>, StepError> {
    let plan = &cx.plan;
    let Some(s) = stored_orders(plan)? else {
        return Ok(Vec::new());
    };
    if !(reads_b(plan) || s.kind() == "command") {
        return Ok(Vec::new());
    }
    match s.check(plan.feeder.run_id.as_deref()).await {
        Ok(line) => Ok(vec![format!("reconcile: {line}")]),
        // What B serves but not in the shape the plan says will not change.
        Err(e @ (SourceError::Missing { .. } | SourceError::Unexpected { .. })) => {
            Err(StepError::Source(e))
        }
        // Not answering (yet), or a command's hiccup: the reconcile step
        // reads again at the end, and says so then if it still cannot.
        Err(e) => {
            cx.out.warn(&format!("{e} (read again at the end)"));
            Ok(Vec::new())
        }
    }
}

/// The message preflight refuses with (the switch's problems prefixed `switch:`).
pub fn refusal(e: &StepError) -> String {
    match e {
        StepError::Switch(SwitchError::Config(m)) => format!("switch: {m}"),
        StepError::Switch(other) => format!("switch: {other}"),
        StepError::Source(e) => format!("source {e}"),
        other => other.to_string(),
    }
}

fn print_plan(
    cx: &Ctx,
    switch: &dyn TrafficSwitch,
    switch_detail: &str,
    ack_log: &Path,
    dry_run: bool,
) {
    let p = &cx.plan;
    let pr = &cx.out;
    pr.note(&format!("switch: {} — {switch_detail}", switch.describe()));
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
            ack_log.display()
        )),
        FeederMode::External => pr.note(&format!(
            "load: external feeder, ack log {}",
            ack_log.display()
        )),
    }
    pr.note(&format!(
        "budgets: failed ≤ {}, gap ≤ {} ms, missed ≤ {}",
        p.budgets.failed, p.budgets.max_gap_ms, p.budgets.missed
    ));
    if dry_run {
        pr.line("--- plan ---");
        pr.line(p.to_toml_shown().trim_end());
        pr.line("------------");
    }
}
