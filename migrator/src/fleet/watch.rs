//! The watch: a read-only probe on every host's record for the whole fleet
//! (`[fleet.watch]`), so the service's availability is measured also between
//! a host's two runs — while the host is maintained and its service runs on
//! the hold-over — not only while it moves. Each run's own feeder proves the
//! moves order by order; the watch proves nobody saw the service down in
//! between. A probe that failed fails its host.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::{FleetPlan, Leg};

/// `[fleet.watch]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchPlan {
    /// What to GET on each host's record (through the switch), e.g. `/health`.
    pub path: String,
    /// Probes per second, per host.
    #[serde(default = "five")]
    pub rate: f64,
}

fn five() -> f64 {
    5.0
}

/// The watch's bound: it ends with the fleet, or after this at the latest.
const MAX_WATCH: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a host's probes saw.
#[derive(Debug, Clone, Serialize)]
pub struct WatchSummary {
    pub sent: u64,
    pub ok: u64,
    /// Rejected (4xx) or indeterminate (timeout, connection error, 5xx).
    pub failed: u64,
    /// The longest time without a successful probe: the downtime seen.
    pub max_gap_ms: f64,
}

/// The probes running, one per host.
pub struct Watch {
    probes: Vec<feeder::Handle>,
}

impl WatchPlan {
    /// The plan key a bad value is about.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.path.starts_with('/') {
            return Err((
                "fleet.watch.path",
                format!("must start with '/', got {:?}", self.path),
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 1000.0) {
            return Err((
                "fleet.watch.rate",
                format!("must be more than 0 and at most 1000, got {}", self.rate),
            ));
        }
        Ok(())
    }
}

impl Watch {
    /// Starts a probe on every host's record, where its runs' feeder sends.
    pub async fn start(plan: &FleetPlan, w: &WatchPlan) -> Result<Watch, String> {
        let mut probes = Vec::new();
        let workdir = std::path::PathBuf::from(".");
        for host in &plan.fleet.hosts {
            let run = plan
                .run_plan(host, &plan.fleet.holdover[0], Leg::Out, &workdir)
                .map_err(|e| e.to_string())?;
            let target = run
                .feeder
                .target
                .clone()
                .ok_or_else(|| "feeder.target: missing (the watch probes it)".to_string())?;
            let mut o = feeder::Options::new(target, w.rate);
            o.duration = Some(MAX_WATCH);
            o.timeout = run.feeder.timeout;
            o.resolve = run
                .feeder
                .resolve
                .iter()
                .map(|(h, a)| (h.clone(), *a))
                .collect();
            o.workload = feeder::Workload::Probe {
                path: w.path.clone(),
            };
            o.progress = feeder::Progress::Off;
            let handle = feeder::start(o)
                .await
                .map_err(|e| format!("fleet.watch (host {}): {e}", host.name()))?;
            probes.push(handle);
        }
        Ok(Watch { probes })
    }

    /// Stops every probe; what each host's saw, in host order.
    pub async fn finish(self) -> Vec<Option<WatchSummary>> {
        let mut out = Vec::new();
        for p in self.probes {
            p.stop();
            out.push(p.finish().await.ok().map(|r| WatchSummary {
                sent: r.sent,
                ok: r.ok,
                failed: r.rejected + r.indeterminate,
                max_gap_ms: r.max_gap_ms,
            }));
        }
        out
    }
}
