//! `command:CMD`: any command of the plan's, as a fault (a firewall rule,
//! a `tc qdisc` delay, a `docker pause`) — also how store faults reach a
//! store the migrator cannot stop itself.

use std::time::Duration;

use super::Fired;
use crate::process::run_shell;

/// How long a fault's command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd`; its first output line (if any) is the detail.
pub async fn run(cmd: &str) -> Result<Fired, String> {
    let out = run_shell(cmd, COMMAND_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let first = out.lines().next().unwrap_or("").trim();
    Ok(Fired::now(if first.is_empty() {
        format!("ran `{}`", crate::redact::passwords(cmd))
    } else {
        format!("ran `{}`: {first}", crate::redact::passwords(cmd))
    }))
}
