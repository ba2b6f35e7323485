//! `converge.kind = "http_json"`: B's applied position and the store's head
//! as numbers in JSON documents (`/status` of a cluster member, a replica's
//! admin endpoint).

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{ConvergeSource, Positions};
use crate::plan::Origin;
use crate::sources::json::PointerQuery;
use crate::sources::{http_client, served_by, SourceError};

pub struct JsonPositions {
    http: reqwest::Client,
    applied: PointerQuery,
    head: PointerQuery,
}

impl JsonPositions {
    pub fn new(applied: PointerQuery, head: PointerQuery) -> JsonPositions {
        JsonPositions {
            http: http_client(),
            applied,
            head,
        }
    }
}

impl ConvergeSource for JsonPositions {
    fn describe(&self) -> String {
        format!(
            "http_json: applied {}, head {}",
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
            Ok(Positions {
                applied: self.applied.read(&self.http, "converge.applied").await?,
                head,
                ready: true,
            })
        }
        .boxed()
    }
}
