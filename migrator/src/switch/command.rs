//! The command switch: the user's own tooling moves traffic, so handover can
//! be the regression test of someone else's migration scripts.
//!
//! `read` prints where traffic goes now (first non-empty stdout line); `flip`
//! moves it, with `{from}` and `{to}` filled in. The compare-and-set is done
//! here: read, refuse on a mismatch, flip, read back.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{FlipReport, SwitchError, SwitchState, TrafficSwitch};
use crate::plan::{fill, CommandPlan};
use crate::process::run_shell;

pub struct CommandSwitch {
    plan: CommandPlan,
    timeout: Duration,
}

impl CommandSwitch {
    pub fn new(plan: CommandPlan, timeout: Duration) -> Self {
        CommandSwitch { plan, timeout }
    }

    async fn read(&self) -> Result<String, SwitchError> {
        let out = run_shell(&self.plan.read, self.timeout)
            .await
            .map_err(|e| SwitchError::Command(format!("switch.read: {e}")))?;
        out.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                SwitchError::Command(format!(
                    "switch.read: `{}` printed nothing (expected the current address)",
                    self.plan.read
                ))
            })
    }
}

impl TrafficSwitch for CommandSwitch {
    fn describe(&self) -> String {
        format!(
            "command: flip `{}`, read `{}`",
            self.plan.flip, self.plan.read
        )
    }

    fn check(&self) -> BoxFuture<'_, Result<SwitchState, SwitchError>> {
        async move {
            let current = self.read().await?;
            Ok(SwitchState {
                detail: format!("`{}` says {current}", self.plan.read),
                current,
            })
        }
        .boxed()
    }

    fn current(&self) -> BoxFuture<'_, Result<String, SwitchError>> {
        self.read().boxed()
    }

    fn flip<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<FlipReport, SwitchError>> {
        async move {
            let found = self.read().await?;
            if found != from {
                return Err(SwitchError::Refused {
                    expected: from.to_string(),
                    found,
                });
            }
            let cmd = fill(&self.plan.flip, &[("from", from), ("to", to)]);
            run_shell(&cmd, self.timeout)
                .await
                .map_err(|e| SwitchError::Command(format!("switch.flip: {e}")))?;
            let now = self.read().await?;
            if now != to {
                return Err(SwitchError::NotApplied {
                    expected: to.to_string(),
                    found: now,
                });
            }
            Ok(FlipReport {
                attempts: 1,
                retries: Vec::new(),
            })
        }
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn switch(dir: &std::path::Path) -> CommandSwitch {
        let f = dir.join("target");
        std::fs::write(&f, "10.0.0.1\n").unwrap();
        CommandSwitch::new(
            CommandPlan {
                flip: format!("echo {{to}} > {}", f.display()),
                read: format!("cat {}", f.display()),
            },
            Duration::from_secs(10),
        )
    }

    #[tokio::test]
    async fn flips_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = switch(dir.path());
        assert_eq!(s.check().await.unwrap().current, "10.0.0.1");
        s.flip("10.0.0.1", "10.0.0.2").await.unwrap();
        assert_eq!(s.current().await.unwrap(), "10.0.0.2");
    }

    #[tokio::test]
    async fn refuses_when_traffic_is_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let s = switch(dir.path());
        let e = s.flip("10.0.0.9", "10.0.0.2").await.unwrap_err();
        assert!(matches!(e, SwitchError::Refused { .. }), "{e}");
        assert_eq!(s.current().await.unwrap(), "10.0.0.1", "nothing changed");
    }
}
