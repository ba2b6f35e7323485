//! Step 7, reconcile: once B (or A, after a rollback) has applied the store
//! head, every order in the ack log is checked against what it stores.
//! The work is [`crate::reconcile`]; this step prints its progress.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::context::Ctx;
use super::progress::PROGRESS_EVERY;
use crate::reconcile::{
    self, Progress, ProgressFn, ReconcileError, ReconcileOptions, ReconcileReport,
};

/// Reconciles `ack_log` against the instance at `app`.
pub async fn run(
    cx: &Ctx,
    ack_log: &Path,
    app: &url::Url,
) -> Result<ReconcileReport, ReconcileError> {
    let style = cx.out.style;
    let last = Mutex::new(None::<Instant>);
    let progress: ProgressFn = Arc::new(move |p: &Progress| {
        let line = match p {
            Progress::Applying { applied, head } => {
                // Reported on every poll: one line per second is enough.
                let Ok(mut last) = last.lock() else { return };
                if last.is_some_and(|t: Instant| t.elapsed() < PROGRESS_EVERY) {
                    return;
                }
                *last = Some(Instant::now());
                format!("waiting for B to apply the head: {applied} of {head}")
            }
            Progress::Indexed { acks, distinct } => {
                format!("ack log indexed: {acks} lines, {distinct} ids")
            }
            Progress::Fetched { orders } => format!("B's orders read: {orders}"),
        };
        println!("  {}", style.dim(line));
    });
    let opts = ReconcileOptions {
        apply_timeout: cx.plan.timeouts.reconcile,
        progress: Some(progress),
        ..ReconcileOptions::default()
    };
    reconcile::reconcile(ack_log, app, &opts).await
}

/// The report line of a reconciliation.
pub fn detail(r: &ReconcileReport) -> String {
    format!(
        "ok {} lost {} unexpected {} recovered {} duplicated {} mismatched {}",
        r.ok, r.lost, r.unexpected, r.recovered, r.duplicated, r.mismatched
    )
}
