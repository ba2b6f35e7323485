//! Drain sources: where the drain step sees whether A is still being used.
//! The step's rule (nothing moved for `drain.quiet`, nothing in flight) is
//! the same for every source; only the reading differs.

pub mod command;
pub mod health;
pub mod prometheus;
pub mod replies;

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::SourceError;
use crate::plan::{DrainKind, Plan};

/// One reading of A's use.
#[derive(Debug, Clone, PartialEq)]
pub enum Usage {
    /// A number that moves while A is used (requests served, replies seen),
    /// and the requests in flight where the source knows them.
    Counting { total: f64, in_flight: u64 },
    /// A no longer answers: nothing more can reach it.
    Gone(String),
}

/// A way of seeing A's use.
pub trait DrainSource: Send + Sync {
    /// One line saying what is read, for the printed plan.
    fn describe(&self) -> String;

    /// What the number that must stand still is called, for progress lines.
    fn counter(&self) -> String;

    /// One reading; `live` is the in-process feeder's snapshot, if there is one.
    fn read<'a>(
        &'a self,
        live: Option<&'a feeder::Live>,
    ) -> BoxFuture<'a, Result<Usage, SourceError>>;

    /// Preflight, with A serving and no load yet: one reading, said in a line.
    fn preflight(&self) -> BoxFuture<'_, Result<Option<String>, SourceError>> {
        async move {
            Ok(Some(match self.read(None).await? {
                Usage::Counting { total, in_flight } => {
                    format!(
                        "drain: {} = {total} (in flight {in_flight})",
                        self.describe()
                    )
                }
                Usage::Gone(why) => format!("drain: {}: A {why}", self.describe()),
            }))
        }
        .boxed()
    }
}

/// What the drain step does: read a source until A is quiet, or give A a
/// fixed time when the plan says there is nothing to measure.
pub enum Drain {
    Measured(Box<dyn DrainSource>),
    Wait(Duration),
}

/// The drain source the plan asks for. `a_instance`: the instance A answers
/// as (for `replies`), as learned so far.
pub fn from_plan(plan: &Plan, a_instance: Option<&str>) -> Result<Drain, String> {
    let d = &plan.drain;
    Ok(match d.kind {
        DrainKind::Health => Drain::Measured(Box::new(health::HealthUsage::new(plan.a.health()))),
        DrainKind::Replies => {
            let instance = a_instance.ok_or(
                "a.instance: A's instance is not known and no reply named it (drain.kind = \"replies\" needs it)",
            )?;
            Drain::Measured(Box::new(replies::RepliesFrom::new(instance.to_string())))
        }
        DrainKind::Prometheus => {
            let Some(url) = &d.url else {
                return Err(
                    "drain.url: missing (drain.kind = \"prometheus\" reads A's counter there)"
                        .into(),
                );
            };
            let Some(metric) = &d.metric else {
                return Err("drain.metric: missing (the name of A's request counter)".into());
            };
            let q = super::prometheus::MetricQuery {
                url: url.clone(),
                metric: metric.clone(),
                labels: d.labels.clone(),
            };
            q.validate("drain")?;
            Drain::Measured(Box::new(prometheus::CounterUsage::new(q)))
        }
        DrainKind::Command => match &d.command {
            Some(c) => Drain::Measured(Box::new(command::CommandUsage::new(c.clone()))),
            None => return Err("drain.command: missing for kind = \"command\"".into()),
        },
        DrainKind::Wait => match d.wait_for {
            Some(t) => Drain::Wait(t),
            None => return Err("drain.for: missing for kind = \"wait\"".into()),
        },
    })
}
