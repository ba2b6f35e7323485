//! Counters for `GET /metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Label for replies the edge produced itself before choosing an origin.
pub const NO_ORIGIN: &str = "none";

/// Replies counted by (label, status), in a stable order for rendering.
type ByStatus = Mutex<BTreeMap<(String, u16), u64>>;

#[derive(Debug, Default)]
pub struct Metrics {
    /// (origin `ip:port` or `none`, status) → replies.
    proxy: ByStatus,
    /// (method, status) → API replies.
    api: ByStatus,
    /// (origin IP, fault kind) → proxy faults applied (see `origin_faults`).
    proxy_faults: Mutex<BTreeMap<(String, &'static str), u64>>,
    record_changes: AtomicU64,
    /// New routing decisions that moved a client connection to another origin.
    origin_switches: AtomicU64,
    origin_connects: AtomicU64,
}

impl Metrics {
    pub fn proxy_reply(&self, origin: &str, status: u16) {
        count(&self.proxy, origin, status);
    }

    pub fn api_reply(&self, method: &str, status: u16) {
        count(&self.api, method, status);
    }

    /// One proxy fault of `kind` applied to traffic for `origin` (an IP).
    pub fn proxy_fault(&self, origin: &str, kind: &'static str) {
        let mut m = self.proxy_faults.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((origin.to_string(), kind)).or_insert(0) += 1;
    }

    /// Proxy faults of `kind` applied to `origin` so far.
    pub fn proxy_faults_of(&self, origin: &str, kind: &'static str) -> u64 {
        let m = self.proxy_faults.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&(origin.to_string(), kind)).copied().unwrap_or(0)
    }

    pub fn record_changed(&self) {
        self.record_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn origin_switched(&self) {
        self.origin_switches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn origin_connected(&self) {
        self.origin_connects.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders every counter; `faults_injected` comes from the fault state.
    pub fn render(&self, faults_injected: u64) -> String {
        let mut out = String::new();
        render_by_status(
            &mut out,
            "edge_proxy_requests_total",
            "Proxied requests by origin and reply status.",
            "origin",
            &self.proxy,
        );
        render_by_status(
            &mut out,
            "edge_api_requests_total",
            "API requests by method and reply status.",
            "method",
            &self.api,
        );
        let name = "edge_proxy_faults_injected_total";
        let _ = writeln!(
            out,
            "# HELP {name} Proxy faults applied, by origin IP and kind (latency, reset, blackhole).\n# TYPE {name} counter"
        );
        for ((origin, kind), n) in self
            .proxy_faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "{name}{{origin=\"{origin}\",fault=\"{kind}\"}} {n}");
        }
        let counters = [
            (
                "edge_record_changes_total",
                "DNS record creations, updates and deletions.",
                self.record_changes.load(Ordering::Relaxed),
            ),
            (
                "edge_origin_switches_total",
                "Client connections re-routed to a different origin.",
                self.origin_switches.load(Ordering::Relaxed),
            ),
            (
                "edge_origin_connections_total",
                "TCP connections opened to origins.",
                self.origin_connects.load(Ordering::Relaxed),
            ),
            (
                "edge_faults_injected_total",
                "API calls failed or delayed on purpose (/admin/faults).",
                faults_injected,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        out
    }
}

/// Counts one reply under (`label`, `status`).
fn count(counter: &ByStatus, label: &str, status: u16) {
    let mut m = counter.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry((label.to_string(), status)).or_insert(0) += 1;
}

/// One counter family labelled by `label_name` and `status`.
fn render_by_status(
    out: &mut String,
    name: &str,
    help: &str,
    label_name: &str,
    counter: &ByStatus,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for ((label, status), n) in counter.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            out,
            "{name}{{{label_name}=\"{label}\",status=\"{status}\"}} {n}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters() {
        let m = Metrics::default();
        m.proxy_reply("127.0.0.2:8080", 200);
        m.proxy_reply("127.0.0.2:8080", 200);
        m.proxy_reply(NO_ORIGIN, 530);
        m.record_changed();
        let text = m.render(3);
        assert!(
            text.contains("edge_proxy_requests_total{origin=\"127.0.0.2:8080\",status=\"200\"} 2")
        );
        assert!(text.contains("edge_proxy_requests_total{origin=\"none\",status=\"530\"} 1"));
        assert!(text.contains("edge_record_changes_total 1"));
        assert!(text.contains("edge_faults_injected_total 3"));
    }

    #[test]
    fn proxy_faults_are_counted_by_origin_and_kind() {
        let m = Metrics::default();
        m.proxy_fault("127.0.0.2", "reset");
        m.proxy_fault("127.0.0.2", "reset");
        m.proxy_fault("127.0.0.3", "latency");
        assert_eq!(m.proxy_faults_of("127.0.0.2", "reset"), 2);
        assert_eq!(m.proxy_faults_of("127.0.0.2", "latency"), 0);
        let text = m.render(0);
        assert!(text
            .contains("edge_proxy_faults_injected_total{origin=\"127.0.0.2\",fault=\"reset\"} 2"));
        assert!(text.contains(
            "edge_proxy_faults_injected_total{origin=\"127.0.0.3\",fault=\"latency\"} 1"
        ));
    }
}
