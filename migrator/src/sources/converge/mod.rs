//! Converge sources: where the converge step reads B's applied position and
//! the store's head. The step's rule (reach the head, stay within
//! `max_lag` for `stable_for`) is the same for every source; only the
//! reading differs.
//!
//! Every source reads the head before B's applied position, so a lag of 0
//! means "B has applied all that was committed when the reading began".
//! Read the other way round, the head moved on while B was being read: at
//! 30,000/s the round trip alone added hundreds of events, and `migrator
//! demo --rate 30000` never saw B within 100 of the head although B kept up.

pub mod command;
pub mod health;
pub mod http_json;
pub mod prometheus;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::json::PointerQuery;
use super::prometheus::MetricQuery;
use super::SourceError;
use crate::plan::{ConvergeKind, Origin, Plan, Reading};
pub use health::HealthPositions;

/// One reading: how far B has applied, and how far the store goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    pub applied: u64,
    pub head: u64,
    /// B says it can serve: not draining, its store reachable (only the
    /// handover health document can say otherwise; other sources say true).
    pub ready: bool,
}

impl Positions {
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.applied)
    }
}

/// A way of reading B's progress against the store.
pub trait ConvergeSource: Send + Sync {
    /// One line saying what is read, for the printed plan.
    fn describe(&self) -> String;

    /// One reading.
    fn read(&self) -> BoxFuture<'_, Result<Positions, SourceError>>;

    /// Preflight, before B runs: reads what does not need B (`b`) and says
    /// what it read, one line each; what needs B is read once B is up.
    fn preflight<'a>(&'a self, b: &'a Origin) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        let _ = b;
        async { Ok(Vec::new()) }.boxed()
    }
}

/// What the converge step does: read a source until B is caught up, or give
/// B a fixed time when the plan says there is nothing to measure.
pub enum Converge {
    Measured(Box<dyn ConvergeSource>),
    Wait(std::time::Duration),
}

/// The converge source the plan asks for (the plan is validated: a missing
/// reading here is a bug, reported as an error rather than a panic).
pub fn from_plan(plan: &Plan) -> Result<Converge, String> {
    let c = &plan.converge;
    let pair = |what: &str| -> Result<(&Reading, &Reading), String> {
        match (&c.applied, &c.head) {
            (Some(a), Some(h)) => Ok((a, h)),
            (None, _) => Err(format!("converge.applied: missing (converge.kind = \"{what}\" reads B's applied position there)")),
            (_, None) => Err(format!("converge.head: missing (converge.kind = \"{what}\" reads the store's head there)")),
        }
    };
    Ok(match c.kind {
        ConvergeKind::Health => Converge::Measured(Box::new(HealthPositions::new(
            plan.b.health(),
            Some(plan.a.health()),
        ))),
        ConvergeKind::Prometheus => {
            let (a, h) = pair("prometheus")?;
            Converge::Measured(Box::new(prometheus::MetricPositions::new(
                metric_query(a, "converge.applied")?,
                metric_query(h, "converge.head")?,
            )))
        }
        ConvergeKind::HttpJson => {
            let (a, h) = pair("http_json")?;
            Converge::Measured(Box::new(http_json::JsonPositions::new(
                pointer_query(a, "converge.applied")?,
                pointer_query(h, "converge.head")?,
            )))
        }
        ConvergeKind::Command => match &c.command {
            Some(cmd) => Converge::Measured(Box::new(command::CommandPositions::new(cmd.clone()))),
            None => return Err("converge.command: missing for kind = \"command\"".into()),
        },
        ConvergeKind::Wait => match c.wait_for {
            Some(d) => Converge::Wait(d),
            None => return Err("converge.for: missing for kind = \"wait\"".into()),
        },
    })
}

/// A plan reading as a metric query.
pub fn metric_query(r: &Reading, key: &str) -> Result<MetricQuery, String> {
    if r.pointer.is_some() {
        return Err(format!(
            "{key}.pointer: a metric reading has `metric`, not `pointer`"
        ));
    }
    let metric = r
        .metric
        .clone()
        .ok_or_else(|| format!("{key}.metric: missing"))?;
    let q = MetricQuery {
        url: r.url.clone(),
        metric,
        labels: r.labels.clone(),
    };
    q.validate(key)?;
    Ok(q)
}

/// A plan reading as a JSON-pointer query.
pub fn pointer_query(r: &Reading, key: &str) -> Result<PointerQuery, String> {
    if r.metric.is_some() || !r.labels.is_empty() {
        return Err(format!(
            "{key}.metric: a JSON reading has `pointer`, not `metric` or `labels`"
        ));
    }
    let pointer = r
        .pointer
        .clone()
        .ok_or_else(|| format!("{key}.pointer: missing"))?;
    let q = PointerQuery {
        url: r.url.clone(),
        pointer,
    };
    q.validate(key)?;
    Ok(q)
}
