//! Per-order reconciliation: what the feeder was told (its ack logs) against
//! what the service stores, order by order.
//!
//! - [`ledger`]: the pure, memory-compact classification (no I/O).
//! - [`acklog`]: streaming reader of ack logs.
//! - [`wait`]: waiting for B to apply the store head before reading.
//!
//! Where the stored orders are read is a [`StoredOrders`] source the plan
//! chooses ([`crate::sources::reconcile`]; the example app by default). The
//! ack logs are indexed on a blocking thread while B is polled, so the wait
//! for B to catch up and the reading of a large log overlap.

pub mod acklog;
pub mod ledger;
pub mod merged;
pub mod wait;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use crate::sources::converge::{ConvergeSource, Positions};
use crate::sources::reconcile::example_app::App;
use crate::sources::reconcile::StoredOrders;
use crate::sources::SourceError;
use acklog::AckLogError;
use ledger::{AckIndex, Ledger};

/// What a caller hears while the reconciliation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// B has not applied the store head yet.
    Applying { applied: u64, head: u64 },
    /// The ack logs are indexed.
    Indexed { acks: u64, distinct: u64 },
    /// The stored orders are all read.
    Fetched { orders: u64 },
}

/// Called on every [`Progress`]; the migrator prints these as its progress line.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How a reconciliation waits, fetches and reports.
#[derive(Clone)]
pub struct ReconcileOptions {
    /// How long to wait for B's `applied` to reach the store `head`.
    pub apply_timeout: Duration,
    /// Ids kept per non-ok category in the report.
    pub max_ids: usize,
    /// Pause between two position polls.
    pub poll_interval: Duration,
    /// Connect timeout, `/health` timeout, and the longest silence of a
    /// listing (a query or a command may take a minute to start).
    pub request_timeout: Duration,
    pub progress: Option<ProgressFn>,
    /// Judge every stored order, also those outside the ack logs' runs.
    pub all_orders: bool,
    /// The run id `{run}` stands for in a query or command; default: the
    /// one run of the ack logs.
    pub run: Option<String>,
}

impl std::fmt::Debug for ReconcileOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconcileOptions")
            .field("apply_timeout", &self.apply_timeout)
            .field("max_ids", &self.max_ids)
            .field("poll_interval", &self.poll_interval)
            .field("request_timeout", &self.request_timeout)
            .field("progress", &self.progress.is_some())
            .field("all_orders", &self.all_orders)
            .field("run", &self.run)
            .finish()
    }
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            apply_timeout: Duration::from_secs(60),
            max_ids: 100,
            poll_interval: Duration::from_millis(200),
            request_timeout: Duration::from_secs(10),
            progress: None,
            all_orders: false,
            run: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    AckLog(#[from] AckLogError),
    #[error("bad app URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("app {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("app {url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("app {url}: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("app {url} did not apply the store head within {waited_ms} ms (applied {applied}, head {head}){}",
        if last_error.is_empty() { String::new() } else { format!("; last error: {last_error}") })]
    ApplyTimeout {
        url: String,
        waited_ms: u64,
        applied: u64,
        head: u64,
        last_error: String,
    },
    #[error("app {url}: reading /orders broke off: {reason}")]
    Stream { url: String, reason: String },
    /// The plan's source cannot be read, or does not hold what the plan
    /// says (a pointer that resolves to nothing, a query that fails): the
    /// plan or the service must be fixed. Names the plan key.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A source that was being read stopped answering part-way.
    #[error("{source_desc}: reading broke off: {reason}")]
    Broke { source_desc: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ReconcileError {
    /// True for bad input (files, URL, an app that is not there or not the
    /// example app, a source the plan names wrong): exit 2. False when the
    /// run itself failed: exit 1.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            ReconcileError::ApplyTimeout { .. }
                | ReconcileError::Stream { .. }
                | ReconcileError::Broke { .. }
                | ReconcileError::Internal(_)
        )
    }
}

/// Ids of the orders that were not ok, per category, earliest sent first,
/// at most `max_ids` each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NonOkIds {
    pub lost: Vec<String>,
    pub unexpected: Vec<String>,
    pub rejected_present: Vec<String>,
    pub recovered: Vec<String>,
    pub duplicated: Vec<String>,
    pub mismatched: Vec<String>,
}

/// The per-order verdict on what the client was told against what B stores.
///
/// Every distinct acknowledged id lands in exactly one of `ok`, `lost`,
/// `recovered`, `indeterminate_absent`, `rejected_absent`, `rejected_present`,
/// `mismatched`; `duplicated` is counted on top of that.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct ReconcileReport {
    /// Acked and stored with the content sent.
    pub ok: u64,
    /// Acked ok, absent from B.
    pub lost: u64,
    /// Stored but never acked as sent: `never_sent + rejected_present`.
    pub unexpected: u64,
    /// Indeterminate, and stored with the content sent.
    pub recovered: u64,
    /// Ids listed more than once by B or by the ack logs.
    pub duplicated: u64,
    /// Stored with a user or content (line items, the plan's content) other
    /// than those sent.
    pub mismatched: u64,
    /// Refused (4xx) yet stored: a correctness failure, counted in `unexpected`.
    pub rejected_present: u64,
    /// Stored, absent from every ack log; counted in `unexpected`.
    pub never_sent: u64,
    /// Indeterminate and absent: fine, the client was not told it worked.
    pub indeterminate_absent: u64,
    /// Refused and absent: as it should be.
    pub rejected_absent: u64,
    /// Stored orders whose content was not compared: the ack or the
    /// listing had no user or digest for it (a listing of ids only).
    pub content_unchecked: u64,
    /// Ack lines read, and their outcomes.
    pub acked_total: u64,
    pub acked_ok: u64,
    pub acked_rejected: u64,
    pub acked_indeterminate: u64,
    /// Distinct ids in the ack logs.
    pub acked_distinct: u64,
    /// Stored orders outside the ack logs' runs (ids not `{run_id}-{seq}` of
    /// a run in the logs): other clients' or earlier runs' data, counted and
    /// not judged (`--all-orders` judges them too).
    pub foreign: u64,
    /// Orders B listed, and how many distinct ids of the judged ones that was.
    pub stored_total: u64,
    pub stored_distinct: u64,
    pub ids: NonOkIds,
    /// True when some category had more ids than were kept.
    pub ids_truncated: bool,
    /// The example app reconciled against (password redacted); empty for
    /// other sources (see `source`).
    pub app: String,
    /// What was read, password masked: `example app http://b:8080/ (GET
    /// /orders)`, `http listing …`, `sql postgres://u:***@db/x: SELECT …`,
    /// `command …`.
    pub source: String,
    /// What B's positions were read from before the orders (empty: nothing
    /// could say, the orders were read without waiting).
    pub waited_on: String,
    pub ack_files: Vec<String>,
    /// B's positions when its orders were read.
    pub applied: u64,
    pub head: u64,
    /// Time spent waiting for B to apply the head.
    pub wait_ms: u64,
    /// Whole reconciliation, wait included.
    pub duration_ms: u64,
}

impl ReconcileReport {
    /// No acknowledged order lost, nothing stored that should not be, no
    /// duplicate, no altered content.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.unexpected == 0 && self.duplicated == 0 && self.mismatched == 0
    }
}

/// Waits until B has applied the store head, then classifies every order.
pub async fn reconcile(
    acks: &Path,
    app: &url::Url,
    opts: &ReconcileOptions,
) -> Result<ReconcileReport, ReconcileError> {
    reconcile_files(&[acks.to_path_buf()], app, opts).await
}

/// [`reconcile`] over several ack logs (one per feeder process).
pub async fn reconcile_files(
    acks: &[PathBuf],
    app: &url::Url,
    opts: &ReconcileOptions,
) -> Result<ReconcileReport, ReconcileError> {
    let client = App::new(app, opts)?;
    let mut report = reconcile_source(acks, &client, None, opts).await?;
    report.app = client.shown().to_string();
    Ok(report)
}

/// Classifies every order of the ack logs against what `source` lists.
///
/// Before reading, waits for B to have applied the store head: on
/// `converge` when given (the plan's converge source), else on the source's
/// own positions when it has any (the example app's `/health`), else not
/// at all (`waited_on` stays empty). If the source's query or command uses
/// `{run}`, it is read once per run: `opts.run`, else each run of the ack
/// logs.
pub async fn reconcile_source(
    acks: &[PathBuf],
    source: &dyn StoredOrders,
    converge: Option<&dyn ConvergeSource>,
    opts: &ReconcileOptions,
) -> Result<ReconcileReport, ReconcileError> {
    let started = Instant::now();
    if acks.is_empty() {
        return Err(ReconcileError::Internal("no ack log given".into()));
    }
    let paths = acks.to_vec();
    let index = async {
        tokio::task::spawn_blocking(move || index_files(&paths))
            .await
            .map_err(|e| ReconcileError::Internal(format!("ack indexing task: {e}")))?
    };
    let (waited_on, wait) = match converge {
        Some(c) => (c.describe(), Some(wait::converge_applied(c, opts).boxed())),
        None => match source.wait_applied(opts) {
            Some((polled, own)) => (polled, Some(own)),
            None => (String::new(), None),
        },
    };
    let wait = async {
        match wait {
            Some(w) => w.await.map(Some),
            None => Ok(None),
        }
    };
    let (mut ledger, positions) = tokio::try_join!(index, wait)?;
    let runs = runs_to_read(source, &ledger, opts)?;
    if opts.all_orders {
        ledger.judge_all_orders();
    }
    if let Some(report) = &opts.progress {
        report(&Progress::Indexed {
            acks: ledger.acked_total(),
            distinct: ledger.distinct_acked() as u64,
        });
    }
    let mut orders = 0;
    for run in &runs {
        let (read, n) = source.stream(ledger, run.as_deref()).await?;
        ledger = read;
        orders += n;
    }
    if let Some(report) = &opts.progress {
        report(&Progress::Fetched { orders });
    }
    let mut report = ledger.finish(opts.max_ids);
    report.source = source.describe();
    report.waited_on = waited_on;
    report.ack_files = acks.iter().map(|p| p.display().to_string()).collect();
    if let Some((Positions { applied, head, .. }, waited)) = positions {
        report.applied = applied;
        report.head = head;
        report.wait_ms = waited.as_millis() as u64;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The runs to read the source for: one pass with no run unless its text
/// uses `{run}`; then `opts.run`, else every run of the ack logs.
fn runs_to_read(
    source: &dyn StoredOrders,
    ledger: &Ledger,
    opts: &ReconcileOptions,
) -> Result<Vec<Option<String>>, ReconcileError> {
    let Some(key) = source.run_key() else {
        return Ok(vec![None]);
    };
    if let Some(run) = &opts.run {
        return Ok(vec![Some(run.clone())]);
    }
    match ledger.runs() {
        Some(runs) if !runs.is_empty() => Ok(runs.iter().map(|r| Some(r.to_string())).collect()),
        _ => Err(SourceError::Missing {
            key: key.into(),
            what: "uses {run}, but the ack logs' ids are not the feeder's `{run}-{seq}` \
                   (or name more than 64 runs): say which run (`--run ID`)"
                .into(),
        }
        .into()),
    }
}

/// Below this size an ack log is read by one thread.
const PARALLEL_FROM_BYTES: u64 = 8 << 20;

/// Indexes the ack logs, each split across the available cores (parsing
/// JSON is most of the work); parts are appended in file order.
fn index_files(paths: &[PathBuf]) -> Result<Ledger, ReconcileError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut index = AckIndex::new();
    for path in paths {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let parts = if size < PARALLEL_FROM_BYTES {
            1
        } else {
            cores.clamp(1, 4) as u64
        };
        let bound = |k: u64| {
            if k == parts {
                u64::MAX
            } else {
                size * k / parts
            }
        };
        let results: Vec<_> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..parts)
                .map(|k| {
                    let mut part = index.fork();
                    scope.spawn(move || {
                        acklog::for_each_view_in(path, bound(k)..bound(k + 1), |ack| {
                            part.push(ack).map_err(|e| e.to_string())
                        })
                        .map(|span| (part, span))
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join()).collect()
        });
        let mut lines_before = 0;
        for result in results {
            match result {
                Ok(Ok((part, span))) => {
                    if index.is_empty() {
                        // Take the first part as it is: no copy, lower peak memory.
                        index = part;
                    } else {
                        index
                            .append(part)
                            .map_err(|e| ReconcileError::Internal(e.to_string()))?;
                    }
                    lines_before += span.lines;
                }
                Ok(Err(mut e)) => {
                    if let AckLogError::Line { line, .. } = &mut e {
                        *line += lines_before;
                    }
                    return Err(e.into());
                }
                Err(_) => {
                    return Err(ReconcileError::Internal(
                        "ack indexing thread panicked".into(),
                    ))
                }
            }
        }
    }
    Ok(index.seal())
}
