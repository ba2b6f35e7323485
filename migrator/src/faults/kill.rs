//! `kill-a`, `kill-b`: the origin dies at once (SIGKILL), as a crashed host
//! or an OOM kill would — nothing graceful, requests in flight cut off.

use nix::sys::signal::Signal;

use super::{Fired, Side};
use crate::plan::Plan;

/// Kills the origin on `side`: the plan's `kill` command for it, else
/// SIGKILL to what B's start command left running (`b_pid`).
pub async fn kill(plan: &Plan, side: Side, b_pid: Option<u32>) -> Result<Fired, String> {
    let (origin, pid) = match side {
        Side::A => (&plan.a, None),
        Side::B => (&plan.b, b_pid),
    };
    if let Some(cmd) = &origin.kill {
        let pid = pid.map(|p| p.to_string()).unwrap_or_default();
        super::command::run(&plan.origin_command(origin, side.name(), cmd, &pid)).await?;
        return Ok(Fired::now(format!("ran {}.kill", side.name())));
    }
    let pid = pid.ok_or_else(|| {
        format!(
            "{}: no process known and no {}.kill command in the plan",
            side.name().to_uppercase(),
            side.name()
        )
    })?;
    if crate::process::signal(pid, Signal::SIGKILL) {
        Ok(Fired::now(format!(
            "SIGKILL to {} (pid {pid})",
            side.name().to_uppercase()
        )))
    } else {
        Err(format!("pid {pid} is gone already"))
    }
}
