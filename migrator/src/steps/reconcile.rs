//! Step 7, reconcile: once B (or A, after a rollback) has applied the store
//! head, every order in the ack log is checked against what the service
//! stores, read through the plan's reconcile source
//! ([`crate::sources::reconcile`]). The work is [`crate::reconcile`]'s; this
//! step chooses where to read and prints the progress.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::context::Ctx;
use super::progress::PROGRESS_EVERY;
use crate::plan::Origin;
use crate::reconcile::{
    self, Progress, ProgressFn, ReconcileError, ReconcileOptions, ReconcileReport,
};
use crate::sources::reconcile::{self as source, ReconcilePlan};
use crate::sources::served_by;

/// Which origin the orders are read from: B after a cutover, A after a
/// rollback (B is then stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    A,
    B,
}

/// The plan's reconcile source, pointed at `against`: a listing the plan
/// reads from B is read from A after a rollback (same path, A's address).
pub fn source_plan(
    plan: &ReconcilePlan,
    a: &Origin,
    b: &Origin,
    against: Against,
) -> ReconcilePlan {
    let mut plan = plan.clone();
    if let (Against::A, ReconcilePlan::Http(listing)) = (against, &mut plan) {
        if served_by(&listing.url, b) {
            let _ = listing.url.set_host(a.url.host_str());
            let _ = listing.url.set_port(a.url.port());
        }
    }
    plan
}

/// Reconciles the ack logs against what the service stores. `run`: the
/// feeder's run id (what `{run}` stands for), when known.
pub async fn run(
    cx: &Ctx,
    ack_logs: &[PathBuf],
    against: Against,
    run: Option<String>,
) -> Result<ReconcileReport, ReconcileError> {
    let plan = &cx.plan;
    let (origin, name) = match against {
        Against::A => (&plan.a, "A"),
        Against::B => (&plan.b, "B"),
    };
    // A copy of the printer: lines go where the run's lines go (the live view too).
    let out = cx.out.clone();
    // Taken here: the callback may run on another task, outside a fleet's label.
    let label = super::progress::LABEL.try_with(String::clone).ok();
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
                format!("waiting for {name} to apply the head: {applied} of {head}")
            }
            Progress::Indexed { acks, distinct } => {
                format!("ack log indexed: {acks} lines, {distinct} ids")
            }
            Progress::Fetched { orders } => format!("{name}'s orders read: {orders}"),
        };
        match &label {
            Some(l) => super::progress::LABEL.sync_scope(l.clone(), || out.note_dim(&line)),
            None => out.note_dim(&line),
        }
    });
    let opts = ReconcileOptions {
        apply_timeout: plan.timeouts.reconcile,
        progress: Some(progress),
        run,
        ..ReconcileOptions::default()
    };
    let listing = source_plan(&plan.reconcile, &plan.a, &plan.b, against);
    let Some(stored) = source::from_plan(&listing, &origin.url, &opts)? else {
        return Err(ReconcileError::Internal(
            "reconcile.kind = \"none\" has nothing to read".into(),
        ));
    };
    // B's converge source says when B has applied the head; after a
    // rollback there is no such source for A (the example app polls its own).
    let wait = match against {
        Against::B => source::wait_source(plan).map_err(ReconcileError::Internal)?,
        Against::A => None,
    };
    reconcile::reconcile_source(ack_logs, stored.as_ref(), wait.as_deref(), &opts).await
}

/// The report line of a reconciliation.
pub fn detail(r: &ReconcileReport) -> String {
    format!(
        "ok {} lost {} unexpected {} recovered {} duplicated {} mismatched {}",
        r.ok, r.lost, r.unexpected, r.recovered, r.duplicated, r.mismatched
    )
}
