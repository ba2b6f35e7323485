//! Step 6, stop A — and, on a rollback, stop B the same way: the origin's
//! stop command (or SIGTERM to the process its start command left), then
//! wait until its health no longer answers.

use std::time::Duration;

use handover_cli::secs;
use tokio::time::Instant;

use super::context::{Ctx, POLL};
use super::error::StepError;
use crate::health::Probe;
use crate::plan::Origin;
use crate::process::{run_shell, Started};

/// Stops `origin` (`proc`: the process its start command left running, if
/// the migrator started it). Not interrupted by Ctrl-C: a half-stopped
/// origin helps nobody.
pub async fn stop_origin(
    cx: &mut Ctx,
    origin: &Origin,
    mut proc: Option<&mut Started>,
) -> Result<String, StepError> {
    let health_url = origin.health();
    if let Probe::Down(why) = cx.health.probe(&health_url).await {
        let gone = proc.as_mut().is_none_or(|p| p.running_pid().is_none());
        if gone {
            return Ok(format!("{} was already down ({why})", origin.address));
        }
    }
    let pid = proc.as_mut().and_then(|p| p.running_pid());
    match &origin.stop {
        Some(stop) => {
            let pid = pid.map(|p| p.to_string()).unwrap_or_default();
            let name = if origin.address == cx.plan.a.address {
                "a"
            } else {
                "b"
            };
            let cmd = cx.plan.origin_command(origin, name, stop, &pid);
            run_shell(&cmd, cx.plan.timeouts.stop).await?;
        }
        None => match pid {
            Some(p) => {
                crate::process::signal(p, nix::sys::signal::Signal::SIGTERM);
            }
            None => {
                return Err(StepError::Plan(
                    "no stop command and no process to signal".into(),
                ))
            }
        },
    }
    let deadline = Instant::now() + cx.plan.timeouts.stop;
    loop {
        let probe = cx.health.probe(&health_url).await;
        if let Probe::Down(_) = probe {
            if let Some(p) = proc.as_mut() {
                p.wait_exit(Duration::from_secs(5)).await;
            }
            return Ok(format!("{} no longer answers", origin.address));
        }
        if Instant::now() >= deadline {
            return Err(StepError::Service(format!(
                "still answering {} after the stop command: {}",
                secs(cx.plan.timeouts.stop),
                probe.describe()
            )));
        }
        cx.out.progress(|| {
            format!(
                "waiting for {} to stop: {}",
                origin.address,
                probe.describe()
            )
        });
        tokio::time::sleep(POLL).await;
    }
}
