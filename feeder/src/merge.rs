//! Combining the reports of several feeder processes (a load larger than one
//! machine): counts and rates add up, histograms merge exactly, so the
//! percentiles of the whole are right, not averaged.

use crate::histogram;
use crate::Error;
use handover_contract::{FeederReport, RateStats};
use std::path::Path;

/// Reads one `--report` file.
pub fn read(path: &Path) -> Result<FeederReport, Error> {
    let fail = |reason: String| Error::Report {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| fail(format!("not a feeder report: {e}")))
}

/// Merges reports; every report must carry its histograms.
pub fn merge(reports: &[(String, FeederReport)]) -> Result<FeederReport, String> {
    let mut out = FeederReport::default();
    let mut latency = histogram::new();
    let mut service = histogram::new();
    let mut rate_var = 0.0;
    let mut have_rate = false;
    for (name, r) in reports {
        out.sent += r.sent;
        out.ok += r.ok;
        out.rejected += r.rejected;
        out.indeterminate += r.indeterminate;
        out.missed += r.missed;
        out.target_rate += r.target_rate;
        out.achieved_rate += r.achieved_rate;
        out.duration_ms = out.duration_ms.max(r.duration_ms);
        // Each feeder saw its own gaps; the whole has no longer one than the worst.
        out.max_gap_ms = out.max_gap_ms.max(r.max_gap_ms);
        out.queued_max_ms = out.queued_max_ms.max(r.queued_max_ms);
        for (inst, n) in &r.instances {
            *out.instances.entry(inst.clone()).or_default() += n;
        }
        let lat = r
            .latency_histogram
            .as_deref()
            .ok_or_else(|| format!("{name}: no latency histogram to merge"))?;
        histogram::merge(
            &mut latency,
            &histogram::decode(lat).map_err(|e| format!("{name}: {e}"))?,
        );
        if let Some(svc) = r.service_histogram.as_deref() {
            histogram::merge(
                &mut service,
                &histogram::decode(svc).map_err(|e| format!("{name}: {e}"))?,
            );
        }
        if let Some(s) = r.rate_per_second {
            have_rate = true;
            let acc = out.rate_per_second.get_or_insert(RateStats::default());
            acc.mean += s.mean;
            rate_var += s.stddev * s.stddev;
        }
        if let Some(h) = &r.handover {
            match &mut out.handover {
                None => out.handover = Some(h.clone()),
                Some(acc) if acc.from == h.from && acc.to == h.to => {
                    acc.first_new_ns = acc.first_new_ns.min(h.first_new_ns);
                    acc.last_old_ns = acc.last_old_ns.max(h.last_old_ns);
                    acc.overlap_ms = acc.last_old_ns.saturating_sub(acc.first_new_ns) as f64 / 1e6;
                    acc.window_p99_ms = match (acc.window_p99_ms, h.window_p99_ms) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
                Some(_) => {}
            }
        }
    }
    if have_rate {
        if let Some(acc) = &mut out.rate_per_second {
            // Independent feeders: variances add.
            acc.stddev = rate_var.sqrt();
        }
    }
    out.latency_ms = histogram::summary(&latency);
    out.latency_histogram = Some(histogram::encode(&latency)?);
    if !service.is_empty() {
        out.service_ms = histogram::summary(&service);
        out.service_histogram = Some(histogram::encode(&service)?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(values_us: &[u64], ok: u64, inst: &str) -> FeederReport {
        let mut h = histogram::new();
        for v in values_us {
            histogram::record(&mut h, *v);
        }
        let mut r = FeederReport {
            sent: ok,
            ok,
            target_rate: 100.0,
            achieved_rate: 99.0,
            duration_ms: 1000,
            latency_ms: histogram::summary(&h),
            latency_histogram: Some(histogram::encode(&h).unwrap()),
            ..FeederReport::default()
        };
        r.instances.insert(inst.into(), ok);
        r
    }

    #[test]
    fn sums_counts_and_merges_histograms() {
        let a = report(&[1_000; 99], 99, "a");
        let b = report(&[500_000], 1, "b");
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!((m.sent, m.ok), (100, 100));
        assert_eq!(m.target_rate, 200.0);
        assert_eq!(m.instances.len(), 2);
        assert!((m.latency_ms.max - 500.0).abs() < 1.0, "{:?}", m.latency_ms);
        assert!((m.latency_ms.p50 - 1.0).abs() < 0.01);
        let back = histogram::decode(m.latency_histogram.as_deref().unwrap()).unwrap();
        assert_eq!(back.len(), 100);
    }

    #[test]
    fn refuses_reports_without_histograms() {
        let mut a = report(&[1], 1, "a");
        a.latency_histogram = None;
        let err = merge(&[("x.json".into(), a)]).unwrap_err();
        assert!(err.contains("x.json"), "{err}");
    }
}
