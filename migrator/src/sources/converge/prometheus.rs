//! `converge.kind = "prometheus"`: B's applied position and the store's
//! head as two metrics — a raft member's `applied_index` against the
//! leader's `commit_index`, a replica's replayed LSN against the primary's.

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{ConvergeSource, Positions};
use crate::plan::Origin;
use crate::sources::prometheus::MetricQuery;
use crate::sources::{http_client, served_by, SourceError};

pub struct MetricPositions {
    http: reqwest::Client,
    applied: MetricQuery,
    head: MetricQuery,
}

impl MetricPositions {
    pub fn new(applied: MetricQuery, head: MetricQuery) -> MetricPositions {
        MetricPositions {
            http: http_client(),
            applied,
            head,
        }
    }
}

/// A metric's value as a position: whole and not negative.
fn position(key: &str, v: f64) -> Result<u64, SourceError> {
    if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
        Ok(v as u64)
    } else {
        Err(SourceError::Unexpected {
            key: key.into(),
            what: format!("{v} is not a position (a whole number ≥ 0)"),
        })
    }
}

impl ConvergeSource for MetricPositions {
    fn describe(&self) -> String {
        format!(
            "prometheus: applied {}, head {}",
            self.applied.describe(),
            self.head.describe()
        )
    }

    fn preflight<'a>(&'a self, b: &'a Origin) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        async move {
            let mut seen = Vec::new();
            for (key, q) in [
                ("converge.applied", &self.applied),
                ("converge.head", &self.head),
            ] {
                if !served_by(&q.url, b) {
                    let v = q.read(&self.http, key).await?;
                    seen.push(format!("{key}: {} = {v}", q.describe()));
                }
            }
            Ok(seen)
        }
        .boxed()
    }

    fn read(&self) -> BoxFuture<'_, Result<Positions, SourceError>> {
        async move {
            // The head first (see `super` on the order).
            let head = self.head.read(&self.http, "converge.head").await?;
            let applied = self.applied.read(&self.http, "converge.applied").await?;
            Ok(Positions {
                applied: position("converge.applied", applied)?,
                head: position("converge.head", head)?,
                ready: true,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_whole_and_not_negative() {
        assert_eq!(position("k", 42.0).ok(), Some(42));
        for bad in [-1.0, 1.5, f64::INFINITY] {
            assert!(position("k", bad).is_err(), "{bad}");
        }
    }
}
