//! Starting, observing and stopping a run: wires the pipeline
//! pacer → slot queue → workers → records → collector together and turns
//! what they counted into the report.

use crate::ack_log::AckLog;
use crate::aggregate::Interval;
use crate::clock::Clock;
use crate::collector::{self, Collected, Output};
use crate::live::Shared;
use crate::pacer::{self, Schedule};
use crate::template;
use crate::transport::Transport;
use crate::worker::{self, SlotQueue, Workers};
use crate::workload::Plan;
use crate::{Error, Live, Options, UserSource, Workload};
use handover_contract::FeederReport;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Records waiting for the collector; when it falls behind, workers wait,
/// the in-flight count rises and the pacer reports missed slots: memory
/// stays bounded and nothing is dropped silently.
const RECORD_QUEUE: usize = 16 * 1024;

/// A running feeder. Dropping it stops sending.
pub struct Handle {
    stop: CancellationToken,
    shared: Arc<Shared>,
    pacer: Option<JoinHandle<Duration>>,
    collector: Option<JoinHandle<Result<Collected, Error>>>,
    rate: f64,
    run_id: String,
    clock: Clock,
}

/// Stops a run from anywhere (a signal handler, another task).
#[derive(Clone, Debug)]
pub struct Stopper(CancellationToken);

impl Stopper {
    pub fn stop(&self) {
        self.0.cancel();
    }
}

/// The report plus what only a human summary needs.
#[derive(Debug, Clone)]
pub struct Finished {
    pub report: FeederReport,
    /// 95 % interval of the per-second p99 (ms): steady-state latency.
    pub steady_p99: Option<Interval>,
    /// Lines written to the ack log, if one was kept.
    pub ack_lines: Option<u64>,
}

/// The user ids orders are placed for.
async fn users_of(users: &UserSource, transport: &Transport) -> Result<Vec<String>, Error> {
    match users {
        UserSource::List(list) => Ok(list.clone()),
        UserSource::FromApp => transport.fetch_users().await,
    }
}

/// What goes on the request line for `url`: its path and query.
fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Validates the options, sets up the client and the ack log, and starts sending.
pub async fn start(opts: Options) -> Result<Handle, Error> {
    opts.validate()?;
    let transport = Arc::new(Transport::new(&opts)?);
    let plan = match &opts.workload {
        Workload::Orders { users } => {
            let users = users_of(users, &transport).await?;
            let url = transport.url("orders");
            Plan::orders(&opts.run_id, &path_and_query(&url), users)
        }
        Workload::Probe { path } => {
            Plan::probe(&opts.run_id, &path_and_query(&transport.url(path)))
        }
        Workload::Template(t) => {
            let compiled = t.compile()?;
            let users = match compiled.body {
                template::Body::Order => users_of(&UserSource::FromApp, &transport).await?,
                _ => Vec::new(),
            };
            Plan::template(&opts.run_id, transport.base_path(), compiled, users)
        }
    };
    let plan = Arc::new(plan);
    let ack = match &opts.ack_log {
        Some(path) => Some(AckLog::create(path)?),
        None => None,
    };
    let output = Output::new(opts.progress);
    let cap = opts.in_flight_cap() as u64;
    let connections = opts.connection_cap();
    // Only the open-file limit is worth a warning; the default cap is a choice.
    let wanted = crate::options::default_connections(cap as usize);
    if opts.connections.is_none() && connections < wanted {
        tracing::warn!(
            wanted,
            connections,
            "the open-file limit allows fewer connections than the default: \
             during a stall, requests wait inside the feeder (see queued_max_ms); raise `ulimit -n`"
        );
    }
    // Dialled before the clock starts, so the first due slots of a fast run
    // find workers ready instead of each paying for a connect.
    let warm = transport
        .open(Workers::dial_ahead(opts.own_rate()).min(connections))
        .await;
    let schedule = Schedule::new(opts.rate, opts.duration).with_shard(opts.shard);
    let shared = Arc::new(Shared::default());
    let stop = CancellationToken::new();
    let (tx, rx) = mpsc::channel(RECORD_QUEUE);
    let clock = Clock::start();
    tracing::info!(
        target = %opts.target,
        rate = opts.rate,
        shard = %opts.shard,
        cap,
        connections,
        run_id = %opts.run_id,
        "feeder starting"
    );
    let collector = tokio::spawn(collector::collect(
        rx,
        clock,
        opts.own_rate(),
        shared.clone(),
        ack,
        output,
    ));
    let cx = Arc::new(worker::Context {
        transport,
        plan,
        clock,
        shared: shared.clone(),
        queue: Arc::new(SlotQueue::default()),
    });
    let mut workers = Workers::new(cx, tx, connections);
    workers.start_with(warm);
    let pacer = tokio::spawn(pacer::pace(
        schedule,
        clock,
        cap,
        stop.clone(),
        shared.clone(),
        workers,
    ));
    Ok(Handle {
        stop,
        shared,
        pacer: Some(pacer),
        collector: Some(collector),
        // What this process was asked to send: its shard of the schedule.
        rate: opts.own_rate(),
        run_id: opts.run_id,
        clock,
    })
}

impl Handle {
    /// A snapshot of the totals so far.
    pub fn live(&self) -> Live {
        self.shared.live()
    }

    /// A cloneable reader of [`Handle::live`], for a task of its own.
    pub fn watch(&self) -> crate::live::Watch {
        crate::live::Watch(self.shared.clone())
    }

    /// Stops sending now; requests in flight finish (up to the timeout).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// A cloneable way to call [`Handle::stop`] from elsewhere.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// The prefix of this run's order ids.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Waits for the end of the run (duration elapsed or [`Handle::stop`]) and
    /// returns the report, with the ack log flushed and synced.
    pub async fn finish(self) -> Result<FeederReport, Error> {
        self.finish_detailed().await.map(|f| f.report)
    }

    /// [`Handle::finish`], plus the figures the printed summary adds.
    pub async fn finish_detailed(mut self) -> Result<Finished, Error> {
        let pacer = self
            .pacer
            .take()
            .ok_or_else(|| Error::Internal("finished twice".into()))?;
        let collector = self
            .collector
            .take()
            .ok_or_else(|| Error::Internal("finished twice".into()))?;
        let period = pacer
            .await
            .map_err(|e| Error::Internal(format!("pacer: {e}")))?;
        let collected = collector
            .await
            .map_err(|e| Error::Internal(format!("collector: {e}")))??;
        // Slots that waited for a connection stretch the sending period: the
        // achieved rate is what really went out, not what was scheduled.
        let last_sent = self.shared.last_sent_ns.load(Ordering::Relaxed);
        let period = period.max(Duration::from_nanos(
            last_sent.saturating_sub(self.clock.t0_unix_ns()),
        ));
        let sent = self.shared.sent.load(Ordering::Relaxed);
        let missed = self.shared.missed.load(Ordering::Relaxed);
        let duration_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        let mut report = collected
            .aggregate
            .report(self.rate, sent, missed, duration_ms);
        // Rate over the exact period, not the rounded milliseconds.
        if period > Duration::ZERO {
            report.achieved_rate = sent as f64 / period.as_secs_f64();
        }
        Ok(Finished {
            report,
            steady_p99: collected.aggregate.steady_p99(),
            ack_lines: collected.ack_lines,
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
