//! One host's turn, with its I/O: the two runs (`steps::run`, in process,
//! reconciled), the maintenance and verify commands, each a step of the
//! host's report, driving the pure [`Machine`] that decides what comes next.

use std::path::PathBuf;

use handover_cli::{secs, Style};
use tokio_util::sync::CancellationToken;

use super::host::{Event, Machine, Phase, RunResult};
use super::plan::{FleetPlan, HostEntry, Leg};
use super::progress::Progress;
use super::report::{orders, HostReport};
use super::schedule::{HostEnd, Turn};
use crate::faults::Targets;
use crate::process::{run_shell, Reaper};
use crate::report::{StepOutcome, StepTimer};
use crate::steps::{self, progress::LABEL, RunOptions};
use crate::switch::cloudflare::Token;

/// What every turn shares.
pub struct Fleet {
    pub plan: FleetPlan,
    pub workdir: PathBuf,
    pub style: Style,
    pub reaper: Reaper,
    pub cancel: CancellationToken,
    pub token: Option<Token>,
    pub targets: Targets,
    pub progress: Progress,
}

impl Fleet {
    /// The report of a host that never had its turn.
    pub fn unstarted(&self, i: usize, why: &str) -> HostReport {
        let host = &self.plan.fleet.hosts[i];
        HostReport {
            state: Phase::Skipped,
            reason: Some(format!("not maintained: {why}")),
            ..HostReport::new(host.address(), &host.name())
        }
    }

    /// Host `turn.host`'s whole turn on hold-over `turn.holdover`.
    pub async fn turn(&self, turn: Turn) -> (HostEnd, HostReport) {
        let i = turn.host;
        let host = &self.plan.fleet.hosts[i];
        let holdover = self.plan.fleet.holdover[turn.holdover].as_str();
        let mut rep = HostReport {
            holdover: Some(holdover.to_string()),
            ..HostReport::new(host.address(), &host.name())
        };
        let mut m = Machine::new(self.plan.fleet.retries);
        self.progress
            .update(i, |h| h.holdover = Some(holdover.to_string()));
        m.on(Event::Start);
        self.progress.event(
            i,
            m.phase,
            "start",
            true,
            &format!(
                "on hold-over {holdover} (batch {}, after {} of jitter)",
                turn.batch,
                secs(turn.delay)
            ),
        );
        let end = loop {
            let event = match m.phase {
                Phase::ToHoldover => {
                    Event::OutRun(self.run(i, host, holdover, Leg::Out, &mut rep).await)
                }
                Phase::Maintain => self.maintain(host, holdover, &mut rep).await,
                Phase::Verify => self.verify(host, holdover, m.attempts, &mut rep).await,
                Phase::Back => {
                    Event::BackRun(self.run(i, host, holdover, Leg::Back, &mut rep).await)
                }
                Phase::Release => {
                    let step = StepTimer::start("release");
                    let d = format!("{holdover} free for the next host");
                    rep.steps.push(step.finish(StepOutcome::Ok, d));
                    Event::Released
                }
                _ => match m.end() {
                    Some(end) => break end,
                    // Not reachable: every other phase is an end.
                    None => break HostEnd::Stuck,
                },
            };
            let phase = m.on(event);
            if let Some(step) = rep.steps.last() {
                let ok = step.outcome == StepOutcome::Ok;
                let detail = step.detail.as_deref().unwrap_or("");
                self.progress.event(i, phase, &step.name, ok, detail);
            }
            if let Some(end) = m.end() {
                let why = m
                    .why
                    .as_deref()
                    .unwrap_or("maintained and back on its host");
                self.progress
                    .event(i, phase, phase.as_str(), end == HostEnd::Done, why);
            }
        };
        let attempts = m.attempts;
        self.progress.update(i, |h| h.attempts = attempts);
        rep.state = m.phase;
        rep.attempts = attempts;
        rep.passed = end == HostEnd::Done;
        rep.reason = m.why;
        (end, rep)
    }

    /// One run, in process: out to the hold-over or back to the host.
    async fn run(
        &self,
        i: usize,
        host: &HostEntry,
        holdover: &str,
        leg: Leg,
        rep: &mut HostReport,
    ) -> RunResult {
        let name = match leg {
            Leg::Out => "to_holdover",
            Leg::Back => "back",
        };
        let step = StepTimer::start(name);
        let plan = match self.plan.run_plan(host, holdover, leg, &self.workdir) {
            Ok(p) => p,
            Err(e) => {
                // Checked when the fleet plan was loaded; kept for safety.
                rep.steps
                    .push(step.finish(StepOutcome::Failed, e.to_string()));
                return RunResult::of(&Err(steps::RunError::Preflight(e.to_string())));
            }
        };
        let (from, to) = (plan.a.address.clone(), plan.b.address.clone());
        let opts = RunOptions {
            plan,
            dry_run: false,
            report: Some(
                self.workdir
                    .join(format!("{}-{}.json", host.name(), leg.as_str())),
            ),
            plot: None,
            html: None,
            workdir: self.workdir.clone(),
            style: self.style,
            reaper: self.reaper.clone(),
            cancel: self.cancel.child_token(),
            token: self.token.clone(),
            faults: Vec::new(),
            targets: self.targets.clone(),
            // Runs at once share the terminal: the fleet prints lines.
            view: None,
        };
        let result = LABEL.scope(host.name(), steps::run(opts)).await;
        let r = RunResult::of(&result);
        let (outcome, detail) = match &result {
            Ok(o) => {
                let (lost, failed) = orders(&o.report);
                rep.lost += lost;
                rep.failed += failed;
                self.progress.update(i, |h| {
                    h.lost += lost;
                    h.failed += failed;
                });
                let verdict = if o.report.passed {
                    "passed".to_string()
                } else {
                    format!("failed: {}", o.report.reasons.join("; "))
                };
                (
                    if o.report.passed {
                        StepOutcome::Ok
                    } else {
                        StepOutcome::Failed
                    },
                    format!("{from} → {to}: {verdict}; lost {lost}, failed {failed}"),
                )
            }
            Err(e) => (
                StepOutcome::Failed,
                format!("{from} → {to} refused, nothing changed: {e}"),
            ),
        };
        rep.steps.push(step.finish(outcome, detail));
        if let Ok(o) = result {
            rep.runs.push(o.report);
        }
        r
    }

    async fn maintain(&self, host: &HostEntry, holdover: &str, rep: &mut HostReport) -> Event {
        let step = StepTimer::start("maintain");
        let cmd = self.plan.maintain(host, holdover);
        let timeout = self.plan.fleet.maintain_timeout;
        let ran = tokio::select! {
            r = run_shell(&cmd, timeout) => r,
            _ = self.cancel.cancelled() => {
                rep.steps.push(step.finish(StepOutcome::Failed, "interrupted"));
                return Event::Interrupted;
            }
        };
        let (outcome, detail) = match ran {
            Ok(_) => (StepOutcome::Ok, "done".to_string()),
            // A reboot over ssh often ends the connection: verify decides.
            Err(e) => (StepOutcome::Failed, format!("{e} (verify decides)")),
        };
        rep.steps.push(step.finish(outcome, detail));
        Event::Maintained
    }

    async fn verify(
        &self,
        host: &HostEntry,
        holdover: &str,
        attempts: u32,
        rep: &mut HostReport,
    ) -> Event {
        let f = &self.plan.fleet;
        if attempts > 0 {
            tokio::select! {
                _ = tokio::time::sleep(f.retry_delay) => {}
                _ = self.cancel.cancelled() => return Event::Interrupted,
            }
        }
        let step = StepTimer::start("verify");
        let cmd = self.plan.verify(host, holdover);
        let ran = tokio::select! {
            r = run_shell(&cmd, f.verify_timeout) => r,
            _ = self.cancel.cancelled() => {
                rep.steps.push(step.finish(StepOutcome::Failed, "interrupted"));
                return Event::Interrupted;
            }
        };
        let n = attempts + 1;
        let (outcome, detail, ok) = match ran {
            Ok(_) => (
                StepOutcome::Ok,
                format!("attempt {n} of {}: host fine", f.retries),
                true,
            ),
            Err(e) => (
                StepOutcome::Failed,
                format!("attempt {n} of {}: {e}", f.retries),
                false,
            ),
        };
        rep.steps.push(step.finish(outcome, detail));
        Event::Verified(ok)
    }
}
