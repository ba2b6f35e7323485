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
            // A's view counts while A answers; once it is gone, B's is all
            // there is. A is read first (see `super` on the order).
            let a_head = match &self.a {
                Some(a) => document(&self.http, "a.health_url", a)
                    .await
                    .ok()
                    .map(|h| h.head),
                None => None,
            };
            let b = document(&self.http, "b.health_url", &self.b).await?;
            Ok(Positions {
                applied: b.applied,
                head: b.head.max(a_head.unwrap_or(0)),
                ready: b.healthy && !b.draining && b.checks.store == "ok",
            })
        }
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Serves `doc` as `/health` on 127.0.0.1; returns its URL.
    async fn serve(doc: Health) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/health",
            axum::routing::get(move || {
                let d = doc.clone();
                async move { axum::Json(d) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Url::parse(&format!("http://{addr}/health")).unwrap()
    }

    fn doc(applied: u64, head: u64) -> Health {
        Health::idle("x", applied, head)
    }

    /// Blind spot: B whose view of the store stopped at position 10 says
    /// `applied 10, head 10` and looked converged on its own word. The head
    /// A sees (1000) is the one that counts.
    #[tokio::test]
    async fn a_b_with_a_stale_view_of_the_head_is_not_caught_up() {
        let b = serve(doc(10, 10)).await;
        let a = serve(doc(1000, 1000)).await;
        let p = HealthPositions::new(b.clone(), Some(a))
            .read()
            .await
            .unwrap();
        assert_eq!((p.applied, p.head, p.lag()), (10, 1000, 990));
        // Without A (gone after the cutover) B's own view is all there is.
        let p = HealthPositions::new(b, None).read().await.unwrap();
        assert_eq!(p.lag(), 0);
    }

    #[tokio::test]
    async fn b_is_not_ready_while_its_store_check_fails_or_it_drains() {
        let mut d = doc(5, 5);
        d.checks.store = "writer: database is locked".into();
        let p = HealthPositions::new(serve(d).await, None)
            .read()
            .await
            .unwrap();
        assert!(!p.ready);
        let mut d = doc(5, 5);
        d.draining = true;
        let p = HealthPositions::new(serve(d).await, None)
            .read()
            .await
            .unwrap();
        assert!(!p.ready);
        let p = HealthPositions::new(serve(doc(5, 5)).await, None)
            .read()
            .await
            .unwrap();
        assert!(p.ready);
    }

    #[tokio::test]
    async fn a_document_that_is_not_the_handover_one_names_the_key() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let b = Url::parse(&format!("http://{addr}/health")).unwrap();
        let e = HealthPositions::new(b, None).read().await.unwrap_err();
        assert_eq!(e.key(), "b.health_url");
        assert!(
            e.to_string().contains("not a handover health document"),
            "{e}"
        );
    }
}
