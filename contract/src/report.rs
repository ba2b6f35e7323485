//! The feeder's report: written by `feeder --report`, merged by
//! `feeder merge`, and embedded as `feeder` in the migrator's report.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeederReport {
    /// Requests sent (every slot that got a request).
    pub sent: u64,
    pub ok: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    /// Schedule slots that could not be sent because the in-flight cap was hit.
    pub missed: u64,
    /// Requests per second asked for.
    pub target_rate: f64,
    /// Requests per second actually sent over the sending period.
    pub achieved_rate: f64,
    /// Length of the sending period.
    pub duration_ms: u64,
    /// Latency from the due time (includes queueing: no coordinated omission).
    pub latency_ms: LatencySummary,
    /// Latency from the moment the request was sent (service time only).
    #[serde(default)]
    pub service_ms: LatencySummary,
    /// Longest time without a successful reply between the first and the
    /// last due time of the run (an outage at its start or end counts):
    /// the client-side downtime.
    pub max_gap_ms: f64,
    /// Longest a request waited inside the feeder (for a free connection)
    /// between its due time and being sent: when this is large, the server
    /// saw requests late.
    #[serde(default)]
    pub queued_max_ms: f64,
    /// Replies per `X-Instance` value.
    pub instances: BTreeMap<String, u64>,
    /// The instance change, if one was seen.
    #[serde(default)]
    pub handover: Option<Handover>,
    /// Mean and standard deviation of the per-second achieved rate.
    #[serde(default)]
    pub rate_per_second: Option<RateStats>,
    /// The latency histogram (HDR V2, deflate, base64) so reports can merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_histogram: Option<String>,
    /// The service-time histogram, same encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_histogram: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RateStats {
    pub mean: f64,
    pub stddev: f64,
}

/// The moment traffic moved: first reply from the new instance, last from the
/// old one. Times are Unix epoch nanoseconds; the overlap is how long both
/// answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub from: String,
    pub to: String,
    pub first_new_ns: u64,
    pub last_old_ns: u64,
    /// `last_old - first_new` when positive, else 0.
    pub overlap_ms: f64,
    /// p99 latency of replies inside the handover window, to set against the
    /// steady-state p99.
    #[serde(default)]
    pub window_p99_ms: Option<f64>,
}
