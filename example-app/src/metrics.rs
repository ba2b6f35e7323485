//! Request counters and latency histograms, rendered as Prometheus text.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Cumulative only when rendered; stored per bucket (+1 for +Inf).
    buckets: [u64; BUCKETS.len() + 1],
    sum_secs: f64,
    count: u64,
}

/// Per `(method, route)` counters; bounded because routes are the router's
/// patterns (or `unmatched`), never raw paths.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<HashMap<(String, String), RouteStats>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = routes
            .entry((method.to_string(), route.to_string()))
            .or_default();
        *stats.by_status.entry(status).or_default() += 1;
        stats.buckets[bucket] += 1;
        stats.sum_secs += secs;
        stats.count += 1;
    }

    /// Appends the request metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<_> = routes.keys().collect();
        keys.sort();
        out.push_str(
            "# HELP handover_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE handover_http_requests_total counter\n");
        for key in &keys {
            let (method, route) = key;
            for (status, n) in &routes[*key].by_status {
                let _ = writeln!(
                    out,
                    "handover_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP handover_http_request_duration_seconds Time from request to response headers.\n");
        out.push_str("# TYPE handover_http_request_duration_seconds histogram\n");
        for key in &keys {
            let (method, route) = key;
            let s = &routes[*key];
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i];
                let _ = writeln!(
                    out,
                    "handover_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "handover_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "handover_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_secs
            );
            let _ = writeln!(
                out,
                "handover_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

/// Appends one gauge or counter with its help and type lines.
pub fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("POST", "/orders", 201, Duration::from_micros(300));
        m.observe("POST", "/orders", 201, Duration::from_millis(3));
        m.observe("POST", "/orders", 422, Duration::from_secs(10));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "handover_http_requests_total{method=\"POST\",route=\"/orders\",status=\"201\"} 2"
        ));
        assert!(out.contains(
            "handover_http_requests_total{method=\"POST\",route=\"/orders\",status=\"422\"} 1"
        ));
        assert!(out.contains("le=\"0.0005\"} 1\n"));
        assert!(out.contains("le=\"0.005\"} 2\n"));
        assert!(out.contains("le=\"5\"} 2\n"));
        assert!(out.contains("le=\"+Inf\"} 3\n"));
        assert!(out.contains("_count{method=\"POST\",route=\"/orders\"} 3\n"));
    }
}
