//! Per-order reconciliation: the feeder's ack log against B's stored orders.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a reconciliation waits, fetches and reports.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// How long to wait for B's `applied` to reach the store `head`.
    pub apply_timeout: Duration,
    /// Ids kept per non-ok category in the report.
    pub max_ids: usize,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            apply_timeout: Duration::from_secs(60),
            max_ids: 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("not implemented yet")]
    NotYet,
}

/// The per-order verdict on what the client was told against what B stores.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub ok: u64,
    pub lost: u64,
    pub unexpected: u64,
    pub recovered: u64,
    pub duplicated: u64,
    pub mismatched: u64,
}

/// Waits until B has applied the store head, then classifies every order.
pub async fn reconcile(
    acks: &Path,
    app: &url::Url,
    opts: &ReconcileOptions,
) -> Result<ReconcileReport, ReconcileError> {
    let _ = (acks, app, opts);
    Err(ReconcileError::NotYet)
}

/// `migrator reconcile`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileArgs {
    /// The feeder's ack log (JSON lines); repeat for several feeders.
    #[arg(long = "acks", required = true)]
    pub acks: Vec<PathBuf>,
    /// Base URL of the instance whose orders are checked (B).
    #[arg(long)]
    pub app: url::Url,
    /// Write the reconciliation as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Runs `migrator reconcile`; returns the exit code.
pub async fn run_cli(args: ReconcileArgs) -> Result<i32, ReconcileError> {
    let _ = args;
    Err(ReconcileError::NotYet)
}
