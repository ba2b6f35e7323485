//! Reading an origin's `GET /health` directly (not through the switch): the
//! migrator converges on `applied` vs `head`, drains on `requests_total` and
//! `in_flight`, and confirms a stopped instance is gone.

use std::time::Duration;

use handover_contract::Health;
use url::Url;

/// What one probe saw.
#[derive(Debug, Clone)]
pub enum Probe {
    /// 200 with a health document.
    Healthy(Health),
    /// An answer that is not 200 (the document, when the body was one).
    Unhealthy { status: u16, health: Option<Health> },
    /// No HTTP answer: refused, reset, timed out. The instance is not serving.
    Down(String),
}

impl Probe {
    pub fn health(&self) -> Option<&Health> {
        match self {
            Probe::Healthy(h) => Some(h),
            Probe::Unhealthy { health, .. } => health.as_ref(),
            Probe::Down(_) => None,
        }
    }

    pub fn is_healthy(&self) -> bool {
        matches!(self, Probe::Healthy(h) if h.healthy)
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        match self {
            Probe::Healthy(h) => format!(
                "healthy (instance {}, applied {}, head {})",
                h.instance, h.applied, h.head
            ),
            Probe::Unhealthy { status, health } => match health {
                Some(h) => format!(
                    "HTTP {status} (store {}, lag {}, draining {})",
                    h.checks.store, h.lag, h.draining
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
        match (status, health) {
            (200, Some(h)) => Probe::Healthy(h),
            (status, health) => Probe::Unhealthy { status, health },
        }
    }
}
