//! The nemesis: faults fired at chosen step boundaries, so "nothing
//! acknowledged is lost" and "it rolls back safely" are shown under the
//! faults a real cutover meets, not only on the happy path.
//!
//! A fault is `STEP:KIND[:ARG]` (`--fault`, or `[[faults]]` in the plan):
//! `before:STEP` fires just before the step starts, `after:STEP` just after
//! it ends, a bare `STEP` as it starts, with the step then running under it
//! (what takes time — a store down for a while — goes on in the background).
//! Every fault fired is an event in the report, a line in the progress
//! output and a mark on the timeline.
//!
//! - [`spec`]: the syntax, the kinds and their arguments.
//! - [`kill`]: `kill-a`, `kill-b` — SIGKILL to an origin.
//! - [`store`]: `stop-store`, `restart-store`, `partition-b-store`.
//! - [`api`]: `api-429`, `api-5xx`, `api-timeout` — the switch's API (the edge).
//! - [`origin`]: `origin-latency`, `origin-reset`, `origin-blackhole` — the
//!   edge's proxy in front of one origin.
//! - [`app`]: `b-unhealthy`, `b-lag` — the example app's fault injection.
//! - [`command`]: `command` — any command of the plan's.

pub mod api;
pub mod app;
pub mod command;
pub mod kill;
pub mod origin;
pub mod spec;
pub mod store;

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::report::{rfc3339_now, unix_ns_now};
pub use spec::{FaultSpec, Kind, Moment, Side};

/// One fault as it was fired, for the report, the progress output and the plot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// `before:flip`, `drain_a`, `after:converge`.
    pub at: String,
    /// `kill-a`, `restart-store:2000`, …
    pub fault: String,
    /// RFC 3339.
    pub fired_at: String,
    /// Unix ns: the ack log's time axis.
    pub fired_ns: u64,
    /// What was done (`SIGKILL to pid 4242`), or why it could not be.
    pub detail: String,
    /// False when the fault could not be injected (then nothing was).
    pub injected: bool,
}

/// What firing a fault did now, and what it still does later (a store
/// brought back after a while): the step goes on meanwhile.
pub struct Fired {
    pub detail: String,
    pub later: Option<BoxFuture<'static, String>>,
}

impl Fired {
    pub fn now(detail: impl Into<String>) -> Fired {
        Fired {
            detail: detail.into(),
            later: None,
        }
    }
}

/// What a fault needs to reach beyond the plan: the local edge's admin API.
#[derive(Clone, Default)]
pub struct Targets {
    /// The edge's admin API (`http://127.0.0.1:PORT/`) and its token, when
    /// the switch is the local edge.
    pub edge_admin: Option<api::EdgeAdmin>,
}

/// Fires the plan's faults at their moments and keeps what happened.
#[derive(Clone)]
pub struct Nemesis {
    specs: Vec<FaultSpec>,
    targets: Targets,
    events: Arc<Mutex<Vec<FaultEvent>>>,
    /// Faults still at work in the background (a store down for a while).
    pending: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Nemesis {
    pub fn new(specs: Vec<FaultSpec>, targets: Targets) -> Nemesis {
        Nemesis {
            specs,
            targets,
            events: Arc::default(),
            pending: Arc::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Fires every fault planned for `moment` of `step`; returns the events
    /// (also kept for [`Nemesis::events`]). `b_pid`: B's process, if running.
    pub async fn fire(
        &self,
        moment: Moment,
        step: &str,
        plan: &Plan,
        b_pid: Option<u32>,
    ) -> Vec<FaultEvent> {
        let mut fired = Vec::new();
        for spec in self
            .specs
            .iter()
            .filter(|s| s.moment == moment && s.step == step)
        {
            let fired_ns = unix_ns_now();
            let fired_at = rfc3339_now();
            let result = self.inject(spec, plan, b_pid).await;
            let (detail, injected) = match result {
                Ok(f) => {
                    if let Some(later) = f.later {
                        let events = self.events.clone();
                        let at = spec.at();
                        let name = spec.name();
                        let handle = tokio::spawn(async move {
                            let detail = later.await;
                            let event = FaultEvent {
                                at,
                                fault: name,
                                fired_at: rfc3339_now(),
                                fired_ns: unix_ns_now(),
                                detail,
                                injected: true,
                            };
                            if let Ok(mut e) = events.lock() {
                                e.push(event);
                            }
                        });
                        if let Ok(mut p) = self.pending.lock() {
                            p.push(handle);
                        }
                    }
                    (f.detail, true)
                }
                Err(why) => (format!("not injected: {why}"), false),
            };
            let event = FaultEvent {
                at: spec.at(),
                fault: spec.name(),
                fired_at,
                fired_ns,
                detail,
                injected,
            };
            if let Ok(mut e) = self.events.lock() {
                e.push(event.clone());
            }
            fired.push(event);
        }
        fired
    }

    async fn inject(
        &self,
        spec: &FaultSpec,
        plan: &Plan,
        b_pid: Option<u32>,
    ) -> Result<Fired, String> {
        let t = &self.targets;
        match &spec.kind {
            Kind::Kill(side) => kill::kill(plan, *side, b_pid).await,
            Kind::StopStore { down } => store::stop(plan, *down).await,
            Kind::PartitionBStore { down } => store::partition_b(plan, *down).await,
            Kind::Api(fault) => api::arm(t.edge_admin.as_ref(), fault).await,
            Kind::Origin { side, fault } => {
                origin::arm(t.edge_admin.as_ref(), plan, *side, fault).await
            }
            Kind::App(fault) => app::inject(plan, fault).await,
            Kind::Command(cmd) => command::run(cmd).await,
        }
    }

    /// Waits (bounded) for faults still at work, so the report has their ends.
    pub async fn settle(&self) {
        let handles: Vec<_> = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        for h in handles {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), h).await;
        }
    }

    /// Every event so far, in the order fired.
    pub fn events(&self) -> Vec<FaultEvent> {
        let mut e = self.events.lock().map(|e| e.clone()).unwrap_or_default();
        e.sort_by_key(|e| e.fired_ns);
        e
    }
}
