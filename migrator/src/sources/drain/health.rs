//! `drain.kind = "health"` (the default): A's handover health document —
//! `requests_total` counts application requests only (never the probes), and
//! `in_flight` says whether one is still being served.

use futures::future::BoxFuture;
use futures::FutureExt;
use url::Url;

use super::{DrainSource, Usage};
use crate::health::{HealthClient, Probe};
use crate::sources::{SourceError, READ_TIMEOUT};

pub struct HealthUsage {
    client: HealthClient,
    url: Url,
}

impl HealthUsage {
    pub fn new(url: Url) -> HealthUsage {
        HealthUsage {
            client: HealthClient::new(READ_TIMEOUT),
            url,
        }
    }
}

impl DrainSource for HealthUsage {
    fn counter(&self) -> String {
        "requests_total".into()
    }

    fn describe(&self) -> String {
        format!("health document {} (requests_total, in_flight)", self.url)
    }

    fn read<'a>(
        &'a self,
        _live: Option<&'a feeder::Live>,
    ) -> BoxFuture<'a, Result<Usage, SourceError>> {
        async move {
            let probe = self.client.probe(&self.url).await;
            if let Probe::Down(_) = probe {
                return Ok(Usage::Gone(probe.describe()));
            }
            match probe.health() {
                Some(h) => Ok(Usage::Counting {
                    total: h.requests_total as f64,
                    in_flight: h.in_flight,
                }),
                None => Err(SourceError::Unexpected {
                    key: "drain.kind".into(),
                    what: format!(
                        "{} ({}) is not a handover health document; for another service choose \
                         drain.kind = \"replies\", \"prometheus\", \"command\" or \"wait\"",
                        self.url,
                        probe.describe()
                    ),
                }),
            }
        }
        .boxed()
    }
}
