//! Probing an origin's health URL directly (not through the switch): is it
//! serving, is it gone. Any 2xx means healthy — a cluster member's `/health`,
//! a load balancer's check — and when the body is the handover health
//! document it is kept, so the example app's instance and positions can be
//! shown; only a step whose source is `health` relies on it.

use std::time::Duration;

use handover_contract::Health;
use url::Url;

/// What one probe saw.
#[derive(Debug, Clone)]
pub enum Probe {
    /// A 2xx (with the handover document, when the body was one, and the
    /// document itself not saying unhealthy).
    Healthy(Option<Health>),
    /// An answer that is not 2xx (the document, when the body was one).
    Unhealthy { status: u16, health: Option<Health> },
    /// No HTTP answer: refused, reset, timed out. The instance is not serving.
    Down(String),
}

impl Probe {
    pub fn health(&self) -> Option<&Health> {
        match self {
            Probe::Healthy(h) => h.as_ref(),
            Probe::Unhealthy { health, .. } => health.as_ref(),
            Probe::Down(_) => None,
        }
    }

    pub fn is_healthy(&self) -> bool {
        matches!(self, Probe::Healthy(_))
    }

    /// The instance the origin says it is, when its health document says.
    pub fn instance(&self) -> Option<&str> {
        self.health().map(|h| h.instance.as_str())
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        match self {
            Probe::Healthy(Some(h)) => format!(
                "healthy (instance {}, applied {}, head {})",
                h.instance, h.applied, h.head
            ),
            Probe::Healthy(None) => "healthy".to_string(),
            Probe::Unhealthy { status, health } => match health {
                Some(h) => format!(
                    "HTTP {status} (store {}, lag {}, draining {}{})",
                    h.checks.store,
                    h.lag,
                    h.draining,
                    h.checks
                        .fault
                        .as_deref()
                        .map(|f| format!(", {f}"))
                        .unwrap_or_default()
                ),
                None => format!("HTTP {status}"),
            },
            Probe::Down(why) => format!("not answering ({why})"),
        }
    }
}

/// A client for health probes with a short per-probe timeout.
#[derive(Clone)]
pub struct HealthClient {
    http: reqwest::Client,
}

impl HealthClient {
    pub fn new(timeout: Duration) -> HealthClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A fresh connection per probe: a pooled one could outlive the
            // instance's listener and make a stopped instance look alive.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        HealthClient { http }
    }

    pub async fn probe(&self, url: &Url) -> Probe {
        let resp = match self.http.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection refused or unreachable"
                } else {
                    "request failed"
                };
                return Probe::Down(why.to_string());
            }
        };
        let status = resp.status().as_u16();
        let health = match resp.bytes().await {
            Ok(b) => serde_json::from_slice::<Health>(&b).ok(),
            Err(_) => None,
        };
        classify(status, health)
    }
}

/// 2xx is healthy unless the handover document itself says it is not.
fn classify(status: u16, health: Option<Health>) -> Probe {
    let doc_says_no = health.as_ref().is_some_and(|h| !h.healthy);
    if (200..300).contains(&status) && !doc_says_no {
        Probe::Healthy(health)
    } else {
        Probe::Unhealthy { status, health }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(healthy: bool) -> Health {
        Health {
            healthy,
            ..Health::idle("a", 1, 1)
        }
    }

    #[test]
    fn any_2xx_is_healthy_with_or_without_the_document() {
        assert!(classify(200, None).is_healthy());
        assert!(classify(204, None).is_healthy());
        assert_eq!(classify(200, Some(doc(true))).instance(), Some("a"));
        assert!(!classify(200, Some(doc(false))).is_healthy());
        assert!(!classify(503, Some(doc(true))).is_healthy());
        assert!(!classify(301, None).is_healthy());
    }
}
