//! Proxy-side faults per origin, like Toxiproxy's toxics: what the proxy
//! does to traffic bound for one origin IP (a record's content, the address
//! the proxy forwards to), armed through the admin API for a while or until
//! cleared (`/admin/origins/{ip}/faults`; see [`crate::admin`]).
//!
//! - `latency`: every request to the origin waits `latency_ms` (± a uniform
//!   `jitter_ms`) before it is forwarded — added to what the origin takes.
//! - `reset`: a request to the origin is not forwarded; the client's
//!   connection is closed with a TCP RST (SO_LINGER 0), no response. A
//!   request already waiting for that origin's response head when reset is
//!   armed is reset the same way; a response whose head was already sent
//!   finishes. The kept origin connection is dropped.
//! - `blackhole`: connecting to the origin never completes. Kept and pooled
//!   connections to it are not used, a new connection waits the whole
//!   `connect_timeout`, and the client gets a real 522. A blackhole lifted
//!   during the wait lets the connect go ahead (as a retransmitted SYN would).
//!
//! Any IP may be armed, whether a record names it or not. Expired faults are
//! dropped when next looked at. Every fault the proxy applies is counted in
//! `/metrics` (`edge_proxy_faults_injected_total{origin,fault}`): latency
//! and reset per request, blackhole per stalled connect.
//!
//! - [`spec`]: the POST body, checked field by field.

pub mod spec;

use crate::metrics::Metrics;
use rand::RngExt;
use serde::Serialize;
use spec::{Latency, OriginFaultSpec};
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::futures::Notified;
use tokio::sync::{watch, Notify};

/// One kind of proxy fault, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Latency,
    Reset,
    Blackhole,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Reset => "reset",
            FaultKind::Blackhole => "blackhole",
        }
    }
}

/// A fault and when it lapses (`None`: when cleared).
#[derive(Debug, Clone, Copy)]
struct Armed<T> {
    fault: T,
    until: Option<Instant>,
}

impl<T: Copy> Armed<T> {
    fn live(slot: &mut Option<Armed<T>>, now: Instant) -> Option<Armed<T>> {
        if slot.is_some_and(|a| a.until.is_some_and(|u| u <= now)) {
            *slot = None;
        }
        *slot
    }
}

/// What is armed for one origin.
#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    latency: Option<Armed<Latency>>,
    reset: Option<Armed<()>>,
    blackhole: Option<Armed<()>>,
}

impl Entry {
    /// Drops what has lapsed by `now`; true when something is still armed.
    fn prune(&mut self, now: Instant) -> bool {
        let latency = Armed::live(&mut self.latency, now).is_some();
        let reset = Armed::live(&mut self.reset, now).is_some();
        let blackhole = Armed::live(&mut self.blackhole, now).is_some();
        latency || reset || blackhole
    }
}

/// What the proxy does to one request bound for an origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnRequest {
    /// Wait this long before forwarding.
    pub delay: Option<Duration>,
    /// Reset the client's connection instead of forwarding.
    pub reset: bool,
    /// Do not use kept or pooled connections (a new connect will stall).
    pub blackhole: bool,
}

/// One origin's faults as the admin API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginView {
    pub origin: IpAddr,
    pub latency: Option<LatencyView>,
    pub reset: Option<Remaining>,
    pub blackhole: Option<Remaining>,
    /// Faults applied to this origin since start, by kind.
    pub injected: Injected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatencyView {
    #[serde(flatten)]
    pub latency: Latency,
    pub remaining_ms: Option<u64>,
}

/// How long an armed fault has left; `null`: until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Remaining {
    pub remaining_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Injected {
    pub latency: u64,
    pub reset: u64,
    pub blackhole: u64,
}

/// The proxy-side faults of every origin.
#[derive(Debug)]
pub struct OriginFaults {
    entries: Mutex<HashMap<IpAddr, Entry>>,
    /// Something may be armed: lets the proxy skip the lock when nothing is.
    active: AtomicBool,
    /// Bumped on every arm and clear, so waiters look again.
    changes: watch::Sender<u64>,
    metrics: Arc<Metrics>,
}

impl OriginFaults {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        OriginFaults {
            entries: Mutex::new(HashMap::new()),
            active: AtomicBool::new(false),
            changes: watch::Sender::new(0),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // A poisoned lock only means a panic elsewhere; the map is still plain data.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms (or disarms) what `spec` names for `ip`; the rest stays.
    pub fn arm(&self, ip: IpAddr, spec: &OriginFaultSpec) -> OriginView {
        let now = Instant::now();
        let until = spec.for_ms.map(|ms| now + Duration::from_millis(ms));
        {
            let mut entries = self.lock();
            let entry = entries.entry(ip).or_default();
            if let Some(latency) = spec.latency {
                entry.latency = (latency.ms > 0).then_some(Armed {
                    fault: latency,
                    until,
                });
            }
            if let Some(on) = spec.reset {
                entry.reset = on.then_some(Armed { fault: (), until });
            }
            if let Some(on) = spec.blackhole {
                entry.blackhole = on.then_some(Armed { fault: (), until });
            }
            self.settle(&mut entries, now);
        }
        self.changes.send_modify(|n| *n += 1);
        self.view(ip)
    }

    /// Disarms everything for `ip`.
    pub fn clear(&self, ip: IpAddr) -> OriginView {
        {
            let mut entries = self.lock();
            entries.remove(&ip);
            self.settle(&mut entries, Instant::now());
        }
        self.changes.send_modify(|n| *n += 1);
        self.view(ip)
    }

    /// Disarms everything for every origin.
    pub fn clear_all(&self) {
        self.lock().clear();
        self.active.store(false, Ordering::Relaxed);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Drops lapsed faults and origins with nothing armed; keeps `active` true.
    fn settle(&self, entries: &mut HashMap<IpAddr, Entry>, now: Instant) {
        entries.retain(|_, e| e.prune(now));
        self.active.store(!entries.is_empty(), Ordering::Relaxed);
    }

    /// One origin's faults now (nothing armed is a valid answer).
    pub fn view(&self, ip: IpAddr) -> OriginView {
        let now = Instant::now();
        let entry = {
            let mut entries = self.lock();
            self.settle(&mut entries, now);
            entries.get(&ip).copied().unwrap_or_default()
        };
        self.render(ip, entry, now)
    }

    /// Every origin with something armed now, by IP.
    pub fn list(&self) -> Vec<OriginView> {
        let now = Instant::now();
        let mut entries: Vec<(IpAddr, Entry)> = {
            let mut map = self.lock();
            self.settle(&mut map, now);
            map.iter().map(|(ip, e)| (*ip, *e)).collect()
        };
        entries.sort_by_key(|(ip, _)| *ip);
        entries
            .into_iter()
            .map(|(ip, e)| self.render(ip, e, now))
            .collect()
    }

    fn render(&self, ip: IpAddr, e: Entry, now: Instant) -> OriginView {
        let left = |until: Option<Instant>| {
            until.map(|u| u.saturating_duration_since(now).as_millis() as u64)
        };
        let count = |kind: FaultKind| self.metrics.proxy_faults_of(&ip.to_string(), kind.as_str());
        OriginView {
            origin: ip,
            latency: e.latency.map(|a| LatencyView {
                latency: a.fault,
                remaining_ms: left(a.until),
            }),
            reset: e.reset.map(|a| Remaining {
                remaining_ms: left(a.until),
            }),
            blackhole: e.blackhole.map(|a| Remaining {
                remaining_ms: left(a.until),
            }),
            injected: Injected {
                latency: count(FaultKind::Latency),
                reset: count(FaultKind::Reset),
                blackhole: count(FaultKind::Blackhole),
            },
        }
    }

    /// The live entry for `ip`, if anything is armed for it.
    ///
    /// Asks the clock only when something is armed: this runs for every
    /// proxied request, and nearly always nothing is.
    fn live(&self, ip: IpAddr) -> Option<Entry> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        let entry = entries.get_mut(&ip)?;
        if entry.prune(now) {
            Some(*entry)
        } else {
            entries.remove(&ip);
            None
        }
    }

    fn injected(&self, ip: IpAddr, kind: FaultKind) {
        tracing::debug!(origin = %ip, fault = kind.as_str(), "proxy fault injected");
        self.metrics.proxy_fault(&ip.to_string(), kind.as_str());
    }

    /// What to do to a request bound for `ip`; counts the latency or reset
    /// it applies (a reset wins over latency).
    pub fn on_request(&self, ip: IpAddr) -> OnRequest {
        let Some(entry) = self.live(ip) else {
            return OnRequest::default();
        };
        let reset = entry.reset.is_some();
        let delay = match entry.latency {
            Some(a) if !reset => Some(draw(a.fault)),
            _ => None,
        };
        if reset {
            self.injected(ip, FaultKind::Reset);
        } else if delay.is_some() {
            self.injected(ip, FaultKind::Latency);
        }
        OnRequest {
            delay,
            reset,
            blackhole: entry.blackhole.is_some(),
        }
    }

    /// Passes every change of what is armed on to `changed`, for as long as
    /// it runs: one relay per proxy thread, so that a request waits on its
    /// own thread's [`Notify`] instead of each request subscribing to the
    /// shared channel. Subscribing and waiting on it per request took locks
    /// and counters that both proxy threads write: about 3 % of the edge's
    /// rate under wrk.
    pub async fn relay_changes(self: Arc<Self>, changed: Arc<Notify>) {
        let mut changes = self.changes.subscribe();
        // The sender lives as long as `self`: this ends with its runtime.
        while changes.changed().await.is_ok() {
            changed.notify_waiters();
        }
    }

    /// Resolves (and counts a reset) once a reset is armed for `ip`: a
    /// request waiting on that origin then resets its client. `changed` is
    /// the calling thread's relay of changes ([`OriginFaults::relay_changes`]).
    pub async fn reset_armed(&self, ip: IpAddr, changed: &Notify) {
        ResetWatch::new(changed).armed(self, ip).await
    }

    /// Whether a reset is armed for `ip` now (counted when it is).
    fn take_reset(&self, ip: IpAddr) -> bool {
        let armed = self.live(ip).is_some_and(|e| e.reset.is_some());
        if armed {
            self.injected(ip, FaultKind::Reset);
        }
        armed
    }

    /// True when `ip` is black-holed: kept and pooled connections to it are
    /// not used.
    pub fn blackholed(&self, ip: IpAddr) -> bool {
        self.live(ip).is_some_and(|e| e.blackhole.is_some())
    }

    /// Before a connect to `ip`: if it is black-holed, counts the fault and
    /// waits until it is lifted (true: connect now) or `deadline` (false:
    /// the connect timed out).
    pub async fn connect_allowed(&self, ip: IpAddr, deadline: tokio::time::Instant) -> bool {
        let mut changes = self.changes.subscribe();
        let mut counted = false;
        loop {
            let Some(hole) = self.live(ip).and_then(|e| e.blackhole) else {
                return true;
            };
            if !counted {
                self.injected(ip, FaultKind::Blackhole);
                counted = true;
            }
            let lapse = hole
                .until
                .map(|u| tokio::time::Instant::from_std(u).min(deadline))
                .unwrap_or(deadline);
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep_until(lapse) => {
                    if tokio::time::Instant::now() >= deadline {
                        return false;
                    }
                }
            }
        }
    }
}

/// One draw of an added delay: `ms ± jitter_ms`, uniform, never negative.
fn draw(latency: Latency) -> Duration {
    let jitter = latency.jitter_ms.min(latency.ms);
    let ms = if jitter == 0 {
        latency.ms
    } else {
        rand::rng().random_range(latency.ms - jitter..=latency.ms + jitter)
    };
    Duration::from_millis(ms)
}

/// A listener on one proxy thread's relay of fault changes
/// ([`OriginFaults::relay_changes`]) for resets. A client connection on the
/// proxy's HTTP/1.1 path keeps one across its requests, rather than
/// registering and dropping a listener per request as
/// [`OriginFaults::reset_armed`] does.
pub struct ResetWatch<'a> {
    changes: &'a Notify,
    listening: Pin<Box<Notified<'a>>>,
}

impl<'a> ResetWatch<'a> {
    pub fn new(changes: &'a Notify) -> ResetWatch<'a> {
        let mut listening = Box::pin(changes.notified());
        listening.as_mut().enable();
        ResetWatch { changes, listening }
    }

    /// Completes (counting the reset) once a reset is armed for `ip`.
    pub async fn armed(&mut self, faults: &OriginFaults, ip: IpAddr) {
        loop {
            // Listening before looking: a change in between still wakes us.
            if faults.take_reset(ip) {
                return;
            }
            self.listening.as_mut().await;
            self.listening.set(self.changes.notified());
            self.listening.as_mut().enable();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "127.0.0.2";

    fn faults() -> OriginFaults {
        OriginFaults::new(Arc::default())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn spec(body: &str) -> OriginFaultSpec {
        OriginFaultSpec::from_body(body.as_bytes()).unwrap()
    }

    #[test]
    fn nothing_armed_does_nothing_and_counts_nothing() {
        let f = faults();
        assert_eq!(f.on_request(ip(A)), OnRequest::default());
        assert!(f.list().is_empty());
        assert_eq!(f.view(ip(A)).injected, Injected::default());
    }

    #[test]
    fn a_body_arms_only_what_it_names_and_clear_disarms_all() {
        let f = faults();
        f.arm(ip(A), &spec(r#"{"latency_ms": 200}"#));
        f.arm(ip(A), &spec(r#"{"blackhole": true}"#));
        let v = f.view(ip(A));
        assert_eq!(v.latency.unwrap().latency.ms, 200);
        assert!(v.blackhole.is_some() && v.reset.is_none());
        let on = f.on_request(ip(A));
        assert_eq!(on.delay, Some(Duration::from_millis(200)));
        assert!(on.blackhole && !on.reset);
        assert_eq!(f.view(ip(A)).injected.latency, 1);
        assert!(f.on_request(ip("127.0.0.3")).delay.is_none(), "per origin");
        f.arm(ip(A), &spec(r#"{"latency_ms": 0}"#));
        assert!(f.view(ip(A)).latency.is_none());
        assert!(f.blackholed(ip(A)));
        f.clear(ip(A));
        assert!(!f.blackholed(ip(A)));
        assert!(f.list().is_empty());
        assert_eq!(
            f.view(ip(A)).injected.latency,
            1,
            "counts outlive the fault"
        );
    }

    #[test]
    fn a_reset_wins_over_latency_and_is_counted() {
        let f = faults();
        f.arm(ip(A), &spec(r#"{"latency_ms": 50, "reset": true}"#));
        let on = f.on_request(ip(A));
        assert!(on.reset && on.delay.is_none());
        let injected = f.view(ip(A)).injected;
        assert_eq!((injected.reset, injected.latency), (1, 0));
    }

    #[test]
    fn a_timed_fault_lapses() {
        let f = faults();
        f.arm(ip(A), &spec(r#"{"reset": true, "for_ms": 30}"#));
        let left = f.list()[0].reset.unwrap().remaining_ms.unwrap();
        assert!(left <= 30, "{left}");
        std::thread::sleep(Duration::from_millis(40));
        assert!(!f.on_request(ip(A)).reset);
        assert!(f.list().is_empty());
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let l = Latency {
            ms: 100,
            jitter_ms: 20,
        };
        for _ in 0..200 {
            let d = draw(l).as_millis();
            assert!((80..=120).contains(&d), "{d}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_blackholed_connect_waits_for_the_deadline_or_the_lift() {
        let f = Arc::new(faults());
        f.arm(ip(A), &spec(r#"{"blackhole": true}"#));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        assert!(!f.connect_allowed(ip(A), deadline).await, "timed out");
        assert_eq!(f.view(ip(A)).injected.blackhole, 1);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let waiting = tokio::spawn({
            let f = Arc::clone(&f);
            async move { f.connect_allowed(ip(A), deadline).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        f.clear(ip(A));
        assert!(waiting.await.unwrap(), "lifted before the deadline");
        assert!(f.connect_allowed(ip(A), deadline).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_armed_later_reaches_a_waiting_request() {
        let f = Arc::new(faults());
        let changed = Arc::new(Notify::new());
        tokio::spawn(Arc::clone(&f).relay_changes(Arc::clone(&changed)));
        let waiting = tokio::spawn({
            let f = Arc::clone(&f);
            async move { f.reset_armed(ip(A), &changed).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        f.arm(ip("127.0.0.3"), &spec(r#"{"reset": true}"#));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "another origin's reset");
        f.arm(ip(A), &spec(r#"{"reset": true}"#));
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.view(ip(A)).injected.reset, 1);
    }
}
