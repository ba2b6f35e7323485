//! Step 4, flip: the traffic switch's compare-and-set from A to B (retries of
//! 429/5xx are the switch's own business). When it fails, where traffic went
//! decides the rollback: still on A is a clean abort; anywhere else leaves
//! both origins running for a person to decide.

use crate::plan::Plan;
use crate::switch::{FlipReport, SwitchError, TrafficSwitch};

/// Moves traffic from A to B.
pub async fn run(switch: &dyn TrafficSwitch, plan: &Plan) -> Result<FlipReport, SwitchError> {
    switch.flip(&plan.a.address, &plan.b.address).await
}

/// The report line of a done flip.
pub fn detail(plan: &Plan, r: &FlipReport) -> String {
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
    d
}

/// Where traffic goes after a failed flip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still on A: nothing changed, B can be stopped.
    OnA,
    /// Somewhere else, or unknown: one line saying which.
    Elsewhere(String),
}

/// Reads the switch once more after a failed flip.
pub async fn after_failure(switch: &dyn TrafficSwitch, plan: &Plan) -> AfterFailure {
    match switch.current().await {
        Ok(cur) if cur == plan.a.address => AfterFailure::OnA,
        Ok(c) => AfterFailure::Elsewhere(format!("traffic now goes to {c}")),
        Err(e) => AfterFailure::Elsewhere(format!("the switch cannot be read ({e})")),
    }
}
