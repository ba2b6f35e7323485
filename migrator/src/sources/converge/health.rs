//! `converge.kind = "health"` (the default): the handover health document.
//! B's `applied` is read from B; the head from A as well as from B, the
//! larger one winning: B's own `head` is only its view of the store, and a B
//! whose view is stale must not be declared caught up on its own word.

use futures::future::BoxFuture;
use futures::FutureExt;
use handover_contract::Health;
use url::Url;

use super::{ConvergeSource, Positions};
use crate::plan::Origin;
use crate::sources::{http_client, SourceError};

/// B's positions from its health document, the head also from A's.
pub struct HealthPositions {
    http: reqwest::Client,
    b: Url,
    a: Option<Url>,
}

impl HealthPositions {
    /// `b`: B's health URL; `a`: A's, read for the head while it answers.
    pub fn new(b: Url, a: Option<Url>) -> HealthPositions {
        HealthPositions {
            http: http_client(),
            b,
            a,
        }
    }
}

/// Reads a health document whatever the status: a 503 while catching up
/// still carries the positions.
async fn document(http: &reqwest::Client, key: &str, url: &Url) -> Result<Health, SourceError> {
    let shown = crate::redact::passwords(url.as_str());
    let resp = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| SourceError::Unreachable {
            key: key.into(),
            url: shown.clone(),
            reason: crate::sources::error_chain(&e),
        })?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| SourceError::Unreachable {
        key: key.into(),
        url: shown.clone(),
        reason: crate::sources::error_chain(&e),
    })?;
    serde_json::from_slice::<Health>(&body).map_err(|e| SourceError::Unexpected {
        key: key.into(),
        what: format!(
            "{shown} (HTTP {status}) is not a handover health document ({e}); \
             for another service choose converge.kind = \"prometheus\", \"http_json\", \"command\" or \"wait\""
        ),
    })
}

impl ConvergeSource for HealthPositions {
    fn describe(&self) -> String {
        match &self.a {
            Some(a) => format!(
                "health documents: B {} (applied), A {a} and B (head)",
                self.b
            ),
            None => format!("health document {}", self.b),
        }
    }

    fn preflight<'a>(&'a self, _b: &'a Origin) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        async move {
            let Some(a) = &self.a else {
                return Ok(Vec::new());
            };
            let h = document(&self.http, "converge.kind", a).await?;
            Ok(vec![format!(
                "converge: A's health document says head {}",
                h.head
            )])
        }
        .boxed()
    }

    fn read(&self) -> BoxFuture<'_, Result<Positions, SourceError>> {
        async move {
            let b = document(&self.http, "b.health_url", &self.b).await?;
            // A's view counts while A answers; once it is gone, B's is all there is.
            let a_head = match &self.a {
                Some(a) => document(&self.http, "a.health_url", a)
                    .await
                    .ok()
                    .map(|h| h.head),
                None => None,
            };
            Ok(Positions {
                applied: b.applied,
                head: b.head.max(a_head.unwrap_or(0)),
                ready: b.healthy && !b.draining && b.checks.store == "ok",
            })
        }
        .boxed()
    }
}
