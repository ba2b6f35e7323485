//! The example-app's `GET /health` document, read by the migrator.

use serde::{Deserialize, Serialize};

/// `GET /health`. The migrator converges on `applied` vs `head` (positions,
/// not counts) and drains on `requests_total` / `in_flight`, which count
/// application requests only, never `/health` or `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// False (and HTTP 503) while the store is down, lagging beyond the
    /// threshold, or draining.
    pub healthy: bool,
    pub instance: String,
    /// Highest store position applied to this instance's projection.
    pub applied: u64,
    /// Highest committed position in the store, as last seen.
    pub head: u64,
    /// `head - applied`.
    pub lag: u64,
    /// True once shutdown has begun: the instance finishes in-flight work only.
    pub draining: bool,
    pub in_flight: u64,
    pub requests_total: u64,
    /// RFC 3339 time of the last application request, if any.
    #[serde(default)]
    pub last_request_at: Option<String>,
    pub checks: HealthChecks,
}

impl Health {
    /// The document of an idle instance whose store is fine, at `applied`
    /// of `head` (stand-in servers in tests and benchmarks; the example
    /// app builds its own from live state).
    pub fn idle(instance: &str, applied: u64, head: u64) -> Health {
        Health {
            healthy: true,
            instance: instance.to_string(),
            applied,
            head,
            lag: head.saturating_sub(applied),
            draining: false,
            in_flight: 0,
            requests_total: 0,
            last_request_at: None,
            checks: HealthChecks {
                store: "ok".into(),
                fault: None,
            },
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthChecks {
    /// `"ok"`, or each failing store task and why: `"writer: …; follower: …"`.
    pub store: String,
    /// Set while a rehearsal's injected fault fails the health check
    /// (`example-app --fault-injection`): why the instance says unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}
