//! The rollback step's actions (when to roll back, and what comes after, is
//! the sequence's business in [`super`]):
//! - before the flip: stop B, traffic stays on A;
//! - after the flip: flip back to A (still running), let routing settle on
//!   A, then stop B.

use std::time::Instant;

use super::context::Ctx;
use super::error::StepError;
use super::load::{hold, Load};
use super::stop_a::stop_origin;
use crate::process::Started;
use crate::switch::{SwitchError, TrafficSwitch};

/// Stops B the way the plan says (`proc`: what B's start command left).
pub async fn stop_b(cx: &mut Ctx, proc: Option<&mut Started>) -> Result<String, StepError> {
    let b = cx.plan.b.clone();
    stop_origin(cx, &b, proc).await
}

/// Sends traffic back to A, waits one quiet window for in-flight routing to
/// settle, and stops B. `Err` only when the flip back failed (then A and B
/// are both left running); B failing to stop is said in the detail.
pub async fn flip_back(
    cx: &mut Ctx,
    switch: &dyn TrafficSwitch,
    load: &Load,
    proc: Option<&mut Started>,
) -> Result<String, SwitchError> {
    let (a, b) = (cx.plan.a.address.clone(), cx.plan.b.address.clone());
    switch.flip(&b, &a).await?;
    let settle = Instant::now() + cx.plan.drain.quiet;
    // Ctrl-C here only shortens the wait: B is stopped either way.
    let _ = hold(cx, load, settle, "back on A").await;
    Ok(match stop_b(cx, proc).await {
        Ok(d) => format!("{b} → {a}; {d}"),
        Err(e) => format!("{b} → {a}; B did not stop: {e}"),
    })
}
