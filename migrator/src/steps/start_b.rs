//! Step 2, start B: run the plan's start command and wait for B's health.
//! A start command that exits with an error ends the wait at once: there is
//! nothing to wait for.

use std::path::Path;
use std::time::Instant;

use handover_cli::secs;

use super::context::Ctx;
use super::error::StepError;
use crate::process::{Reaper, StartState, Started};

/// B serving.
#[derive(Debug, Clone)]
pub struct StartedB {
    /// As the plan names it, or as B's health document says.
    pub instance: Option<String>,
    /// The process the start command left running, if any.
    pub pid: Option<u32>,
}

impl StartedB {
    pub fn detail(&self) -> String {
        let pid = self.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
        match &self.instance {
            Some(i) => format!("B healthy (instance {i}{pid})"),
            None => format!("B healthy (instance not named{pid})"),
        }
    }
}

/// Starts B (its process lands in `proc` as soon as it is spawned, so a
/// rollback can stop it even when this step fails) and waits for its health.
pub async fn run(
    cx: &mut Ctx,
    workdir: &Path,
    reaper: &Reaper,
    proc: &mut Option<Started>,
) -> Result<StartedB, StepError> {
    let b = &cx.plan.b;
    let cmd = cx
        .plan
        .origin_command(b, "b", b.start.as_deref().unwrap_or_default(), "");
    let log = workdir.join("b-start.log");
    let started = proc.insert(Started::spawn(&cmd, &log, Some(reaper))?);
    let health_url = b.health();
    let deadline = Instant::now() + cx.plan.timeouts.health;
    loop {
        if let StartState::Failed(why) = started.state() {
            return Err(StepError::Service(format!("start command {why}")));
        }
        let probe = cx.health.probe(&health_url).await;
        if probe.is_healthy() {
            return Ok(StartedB {
                instance: cx
                    .plan
                    .b
                    .instance
                    .clone()
                    .or_else(|| probe.instance().map(str::to_string)),
                pid: started.running_pid(),
            });
        }
        if Instant::now() >= deadline {
            return Err(StepError::Service(format!(
                "B not healthy within {}: {}",
                secs(cx.plan.timeouts.health),
                probe.describe()
            )));
        }
        cx.out
            .progress(|| format!("waiting for B's health: {}", probe.describe()));
        cx.tick().await?;
    }
}
