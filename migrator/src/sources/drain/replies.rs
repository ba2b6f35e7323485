//! `drain.kind = "replies"`: the client's side of the drain — A is unused
//! once no reply from A's instance has come for the quiet window. It works
//! for any service whose replies name their instance, and needs the feeder
//! in process (the migrator sees every reply as it happens).

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{DrainSource, Usage};
use crate::sources::SourceError;

pub struct RepliesFrom {
    instance: String,
}

impl RepliesFrom {
    pub fn new(instance: String) -> RepliesFrom {
        RepliesFrom { instance }
    }
}

/// Replies from `instance` in `live` (0 before the first).
pub fn replies_from(live: &feeder::Live, instance: &str) -> u64 {
    live.by_instance.get(instance).copied().unwrap_or(0)
}

impl DrainSource for RepliesFrom {
    fn counter(&self) -> String {
        format!("replies from {}", self.instance)
    }

    fn describe(&self) -> String {
        format!(
            "replies from instance {:?} seen by the feeder",
            self.instance
        )
    }

    fn preflight(&self) -> BoxFuture<'_, Result<Option<String>, SourceError>> {
        // Nothing to read before the load runs.
        async { Ok(None) }.boxed()
    }

    fn read<'a>(
        &'a self,
        live: Option<&'a feeder::Live>,
    ) -> BoxFuture<'a, Result<Usage, SourceError>> {
        async move {
            let live = live.ok_or_else(|| SourceError::Unexpected {
                key: "drain.kind".into(),
                what: "\"replies\" needs the feeder in process (feeder.mode = \"in_process\")"
                    .into(),
            })?;
            Ok(Usage::Counting {
                total: replies_from(live, &self.instance) as f64,
                // The feeder's in-flight requests may be on either origin.
                in_flight: 0,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_only_the_named_instance() {
        let mut live = feeder::Live::default();
        live.by_instance.insert("a-1".into(), 40);
        live.by_instance.insert("b-1".into(), 2);
        let s = RepliesFrom::new("a-1".into());
        assert_eq!(
            s.read(Some(&live)).await.ok(),
            Some(Usage::Counting {
                total: 40.0,
                in_flight: 0
            })
        );
        let e = s.read(None).await.unwrap_err();
        assert_eq!(e.key(), "drain.kind");
    }
}
