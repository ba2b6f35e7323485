//! The rollback rules, in one place:
//! - before the flip (B never healthy, never converged, the flip refused
//!   with traffic still on A): stop B, traffic stays on A;
//! - after the flip, B failing: flip back to A (still running), let routing
//!   settle, then stop B.
//!
//! Either way the load runs to its end and is reconciled against A, and the
//! verdict fails.

use std::time::Instant;

use super::load::{hold, Load};
use super::stop_a::stop_origin;
use super::{Pipeline, RunOutcome};
use crate::report::StepOutcome;

impl Pipeline {
    /// Stops B the way the plan says (B's start command left `b_proc`).
    async fn stop_b(&mut self) -> Result<String, super::StepError> {
        let b = self.cx.plan.b.clone();
        stop_origin(&mut self.cx, &b, self.b_proc.as_mut()).await
    }

    /// Before the flip: stop B, traffic stays on A, exit 1.
    pub(super) async fn abort_before_flip(mut self, load: Load, why: String) -> RunOutcome {
        self.report.rollback = Some(format!("{why}; B stopped, traffic stays on A"));
        let step = self.begin("rollback");
        match self.stop_b().await {
            Ok(d) => self.end(step, StepOutcome::Ok, format!("traffic stays on A; {d}")),
            Err(e) => {
                self.end(step, StepOutcome::Failed, format!("B did not stop: {e}"));
                self.failures.push(format!("B did not stop: {e}"));
            }
        }
        let a_url = self.cx.plan.a.url.clone();
        self.finish(load, Some(a_url)).await
    }

    /// After the flip, B failing: traffic back to A (still running), B stopped.
    pub(super) async fn roll_back(mut self, load: Load, why: String) -> RunOutcome {
        let (a, b) = (self.cx.plan.a.clone(), self.cx.plan.b.clone());
        let step = self.begin("rollback");
        match self.switch.flip(&b.address, &a.address).await {
            Ok(_) => {
                self.report.rollback = Some(format!("{why}; traffic sent back to A"));
                // Let in-flight routing settle on A before B goes away.
                let settle = Instant::now() + self.cx.plan.drain.quiet;
                let _ = hold(&mut self.cx, &load, settle, "back on A").await;
                let d = match self.stop_b().await {
                    Ok(d) => format!("{} → {}; {d}", b.address, a.address),
                    Err(e) => format!("{} → {}; B did not stop: {e}", b.address, a.address),
                };
                self.end(step, StepOutcome::Ok, d);
                self.finish(load, Some(a.url)).await
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
