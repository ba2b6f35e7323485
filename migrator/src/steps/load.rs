//! The load that runs through the whole cutover: the feeder in process (the
//! migrator knows every request as it happens), or an external feeder whose
//! ack log and report are read at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use handover_cli::secs;
use handover_contract::FeederReport;

use super::context::Ctx;
use super::error::{RunError, StepError};
use crate::plan::FeederMode;

/// The longest wait for an external feeder to finish after B took over.
const EXTERNAL_WAIT: Duration = Duration::from_secs(600);

/// The load: the feeder in process, or an external one's ack log.
pub enum Load {
    InProcess {
        handle: feeder::Handle,
        started: Instant,
    },
    External {
        started: Instant,
        /// Files older than this belong to an earlier run.
        since: SystemTime,
    },
}

/// What the load left when it ended.
pub struct LoadEnd {
    pub report: Option<FeederReport>,
    /// A problem that fails the run whatever the verdict says.
    pub problem: Option<String>,
}

impl Load {
    /// Starts the feeder in process, or notes when the external load is taken from.
    pub async fn start(cx: &Ctx, ack_log: &Path) -> Result<Load, RunError> {
        let f = &cx.plan.feeder;
        match f.mode {
            FeederMode::External => Ok(Load::External {
                started: Instant::now(),
                since: SystemTime::now(),
            }),
            FeederMode::InProcess => {
                let Some(target) = f.target.clone() else {
                    return Err(RunError::Preflight("feeder.target: missing".into()));
                };
                let mut o = feeder::Options::new(target, f.rate);
                o.timeout = f.timeout;
                o.max_in_flight = f.max_in_flight;
                o.connections = f.connections;
                o.ack_log = Some(ack_log.to_path_buf());
                if let Some(id) = &f.run_id {
                    o.run_id = id.clone();
                }
                o.resolve = f.resolve.iter().map(|(h, a)| (h.clone(), *a)).collect();
                o.workload = match &f.request {
                    Some(request) => feeder::Workload::Template(request.clone()),
                    None => feeder::Workload::Orders {
                        users: feeder::UserSource::FromApp,
                    },
                };
                o.progress = feeder::Progress::Off;
                let run_id = o.run_id.clone();
                let handle = feeder::start(o)
                    .await
                    .map_err(|e| RunError::Preflight(format!("feeder: {e}")))?;
                if let Some(board) = cx.out.board() {
                    board.watch(handle.watch());
                }
                cx.out
                    .note(&format!("load started: {}/s, run id {run_id}", f.rate));
                Ok(Load::InProcess {
                    handle,
                    started: Instant::now(),
                })
            }
        }
    }

    /// The run id the orders carry, when the migrator knows it (in process,
    /// or set in the plan for an external feeder).
    pub fn run_id(&self, plan_run_id: Option<&str>) -> Option<String> {
        match self {
            Load::InProcess { handle, .. } => Some(handle.run_id().to_string()),
            Load::External { .. } => plan_run_id.map(str::to_string),
        }
    }

    pub fn started(&self) -> Instant {
        match self {
            Load::InProcess { started, .. } | Load::External { started, .. } => *started,
        }
    }

    /// The running totals, when the load runs in process.
    pub fn live(&self) -> Option<feeder::Live> {
        match self {
            Load::InProcess { handle, .. } => Some(handle.live()),
            Load::External { .. } => None,
        }
    }

    /// Requests failed so far (0 for an external load: nothing to see yet).
    pub fn failed(&self) -> u64 {
        self.live().map(|l| failed_of(&l)).unwrap_or(0)
    }

    /// The progress line's load part (empty for an external load).
    pub fn line(&self) -> String {
        self.live().map(|l| load_line(&l)).unwrap_or_default()
    }

    /// Ends the load and returns its report (in process) or reads the
    /// external feeder's once its ack log has stopped growing.
    pub async fn finish(self, cx: &mut Ctx, ack_logs: &[PathBuf]) -> LoadEnd {
        match self {
            Load::InProcess { handle, .. } => {
                handle.stop();
                match handle.finish().await {
                    Ok(r) => LoadEnd {
                        report: Some(r),
                        problem: None,
                    },
                    Err(e) => LoadEnd {
                        report: None,
                        problem: Some(format!("feeder: {e}")),
                    },
                }
            }
            Load::External { since, .. } => {
                let reports = cx.plan.feeder.report_list();
                if reports.is_empty() {
                    wait_ack_log_quiet(cx, ack_logs).await;
                    return LoadEnd {
                        report: None,
                        problem: None,
                    };
                }
                // A report is written last, after its ack log is flushed:
                // the one sure sign that an external feeder is done.
                let mut got = Vec::with_capacity(reports.len());
                for path in &reports {
                    let end = wait_external_report(cx, path, since).await;
                    match end.report {
                        Some(r) => got.push((path.display().to_string(), r)),
                        None => return end,
                    }
                }
                merged(got)
            }
        }
    }
}

fn failed_of(l: &feeder::Live) -> u64 {
    l.rejected + l.indeterminate
}

fn load_line(l: &feeder::Live) -> String {
    let by: Vec<String> = l
        .by_instance
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "load: sent {} ok {} failed {} missed {} [{}]",
        l.sent,
        l.ok,
        failed_of(l),
        l.missed,
        by.join(" ")
    )
}

/// Lets the load run (watching nothing but Ctrl-C) until `until`.
pub async fn hold(cx: &mut Ctx, load: &Load, until: Instant, what: &str) -> Result<(), StepError> {
    while Instant::now() < until {
        cx.tick().await?;
        let left = until.saturating_duration_since(Instant::now());
        let line = load.line();
        cx.out
            .progress(|| format!("{what}: {} left; {line}", secs(left)));
    }
    Ok(())
}

async fn wait_external_report(cx: &mut Ctx, path: &PathBuf, since: SystemTime) -> LoadEnd {
    let deadline = Instant::now() + EXTERNAL_WAIT;
    let mut last_err = String::from("not written yet");
    loop {
        let fresh = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if fresh {
            match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<FeederReport>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => {
                    return LoadEnd {
                        report: Some(r),
                        problem: None,
                    }
                }
                // Possibly caught mid-write: try again.
                Err(e) => last_err = e,
            }
        }
        if Instant::now() >= deadline || cx.tick().await.is_err() {
            return LoadEnd {
                report: None,
                problem: Some(format!(
                    "the external feeder's report {} did not appear ({last_err}); reconciled what the ack log had",
                    path.display()
                )),
            };
        }
        cx.out.progress(|| {
            format!(
                "waiting for the external feeder to finish (its report {})",
                path.display()
            )
        });
    }
}

/// One feeder's report as it is; several merged (counts summed, histograms
/// merged, so the percentiles are the whole load's).
fn merged(mut reports: Vec<(String, FeederReport)>) -> LoadEnd {
    if reports.len() == 1 {
        return LoadEnd {
            report: reports.pop().map(|(_, r)| r),
            problem: None,
        };
    }
    match feeder::merge::merge(&reports) {
        Ok(r) => LoadEnd {
            report: Some(r),
            problem: None,
        },
        Err(e) => LoadEnd {
            report: None,
            problem: Some(format!(
                "the external feeders' reports cannot be merged: {e}"
            )),
        },
    }
}

async fn wait_ack_log_quiet(cx: &mut Ctx, ack_logs: &[PathBuf]) {
    // Feeders buffer their ack log: only a long silence means "done".
    let quiet = (cx.plan.feeder.timeout * 2 + Duration::from_secs(1)).max(Duration::from_secs(10));
    cx.out.warn(&format!(
        "no feeder.report: taking {} without ack-log growth as the end of the external load",
        secs(quiet)
    ));
    let deadline = Instant::now() + EXTERNAL_WAIT;
    let total = || ack_logs.iter().map(|p| file_len(p)).sum::<u64>();
    let mut last = (total(), Instant::now());
    while Instant::now() < deadline && last.1.elapsed() < quiet {
        if cx.tick().await.is_err() {
            break;
        }
        let len = total();
        if len != last.0 {
            last = (len, Instant::now());
        }
        cx.out
            .progress(|| format!("ack log {} bytes, quiet {}", last.0, secs(last.1.elapsed())));
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
