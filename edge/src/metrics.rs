//! Counters for `GET /metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Label for replies the edge produced itself before choosing an origin.
const NO_ORIGIN: &str = "none";

/// Replies counted by (label, status), in a stable order for rendering.
type ByStatus<L> = Mutex<BTreeMap<(L, u16), u64>>;

/// Shards of the proxied-reply counters: each proxy thread counts in its
/// own, on its own cache lines, so the threads do not pass a lock and a map
/// between their caches on every request; `/metrics` adds them up.
const SHARDS: usize = 8;

#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(ByStatus<Option<SocketAddr>>);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (origin, or none for the edge's own replies, status) → replies.
    /// Keyed by address, not text: counting a proxied reply allocates nothing.
    proxy: [Shard; SHARDS],
    /// (method, status) → API replies.
    api: ByStatus<String>,
    /// (origin IP, fault kind) → proxy faults applied (see `origin_faults`).
    proxy_faults: Mutex<BTreeMap<(String, &'static str), u64>>,
    record_changes: AtomicU64,
    /// New routing decisions that moved a client connection to another origin.
    origin_switches: AtomicU64,
    origin_connects: AtomicU64,
}

impl Metrics {
    /// One proxied reply from `origin` (`None`: the edge's own, before an
    /// origin was chosen).
    pub fn proxy_reply(&self, origin: Option<SocketAddr>, status: u16) {
        let shard = &self.proxy[MY_SHARD.with(|s| *s)].0;
        let mut m = shard.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((origin, status)).or_insert(0) += 1;
    }

    pub fn api_reply(&self, method: &str, status: u16) {
        let mut m = self.api.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((method.to_string(), status)).or_insert(0) += 1;
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
        let mut proxy = BTreeMap::new();
        for shard in &self.proxy {
            for (key, n) in shard.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                *proxy.entry(*key).or_insert(0) += n;
            }
        }
        render_by_status(
            &mut out,
            "edge_proxy_requests_total",
            "Proxied requests by origin and reply status.",
            "origin",
            &proxy,
            |origin| OriginLabel(*origin),
        );
        render_by_status(
            &mut out,
            "edge_api_requests_total",
            "API requests by method and reply status.",
            "method",
            &self.api.lock().unwrap_or_else(|p| p.into_inner()),
            |method| method.clone(),
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

/// A proxy counter's origin label: `ip:port`, or `none`.
struct OriginLabel(Option<SocketAddr>);

impl fmt::Display for OriginLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(origin) => origin.fmt(f),
            None => f.write_str(NO_ORIGIN),
        }
    }
}

/// One counter family labelled by `label_name` and `status`.
fn render_by_status<L, D: fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    label_name: &str,
    counter: &BTreeMap<(L, u16), u64>,
    label: impl Fn(&L) -> D,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for ((key, status), n) in counter {
        let label = label(key);
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
        let origin: SocketAddr = "127.0.0.2:8080".parse().unwrap_or_else(|_| unreachable!());
        m.proxy_reply(Some(origin), 200);
        m.proxy_reply(Some(origin), 200);
        m.proxy_reply(None, 530);
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
