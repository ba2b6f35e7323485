//! `drain.kind = "prometheus"`: A's request counter (summed over the plan's
//! labels) stops moving. A counter that goes down (A restarted, or a gauge)
//! is movement too: only a number that stands still is quiet.

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{DrainSource, Usage};
use crate::sources::prometheus::MetricQuery;
use crate::sources::{http_client, SourceError};

pub struct CounterUsage {
    http: reqwest::Client,
    query: MetricQuery,
}

impl CounterUsage {
    pub fn new(query: MetricQuery) -> CounterUsage {
        CounterUsage {
            http: http_client(),
            query,
        }
    }
}

impl DrainSource for CounterUsage {
    fn counter(&self) -> String {
        self.query.metric.clone()
    }

    fn describe(&self) -> String {
        format!("prometheus: {}", self.query.describe())
    }

    fn read<'a>(
        &'a self,
        _live: Option<&'a feeder::Live>,
    ) -> BoxFuture<'a, Result<Usage, SourceError>> {
        async move {
            let v = self.query.read(&self.http, "drain.metric").await?;
            if !(v >= 0.0 && v < u64::MAX as f64) {
                return Err(SourceError::Unexpected {
                    key: "drain.metric".into(),
                    what: format!("{} is {v}, not a count", self.query.describe()),
                });
            }
            Ok(Usage::Counting {
                total: v,
                in_flight: 0,
            })
        }
        .boxed()
    }
}
