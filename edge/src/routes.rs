//! The proxy's view of DNS: which origin a Host goes to, including the
//! propagation window after a record change.
//!
//! Cloudflare does not switch every edge server at the same instant when a
//! record changes; for a while some requests still go to the old origin. The
//! model here: after a change, a routing decision picks the new origin with a
//! probability rising linearly from 0 to 1 across `propagation`; the proxy
//! draws that coin once per client connection (see `proxy`).

use crate::record::RecordType;
use crate::zone::Zone;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Where a host's traffic goes according to the current records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A proxied A/AAAA record: forward to this IP on the origin port.
    Origin(IpAddr),
    /// The host exists but no record is proxied (DNS only).
    NotProxied,
    /// Proxied, but not to an address the edge can reach (e.g. a CNAME).
    Unroutable,
    /// No record for this host (any more).
    Missing,
}

#[derive(Debug, Clone, Copy)]
struct Route {
    current: Target,
    /// The origin before the last change, still chosen during the window.
    previous: Option<IpAddr>,
    changed_at: Instant,
}

/// How one client connection sees record changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewer {
    /// Its moment in every propagation window, uniform in [0, 1): it sees a
    /// change once `coin · propagation` has passed since the change.
    pub coin: f64,
    /// When it last re-resolved the records: it sees every change made up to
    /// then at once. `None` for a connection that never did.
    pub resolved_at: Option<Instant>,
}

impl Viewer {
    /// A connection that has only its moment in the window.
    pub fn at(coin: f64) -> Viewer {
        Viewer {
            coin,
            resolved_at: None,
        }
    }

    fn has_resolved_since(&self, changed_at: Instant) -> bool {
        self.resolved_at.is_some_and(|r| r >= changed_at)
    }
}

type Table = HashMap<String, Route>;

#[derive(Debug)]
pub struct Routes {
    table: RwLock<Arc<Table>>,
    /// Bumped with every new table, so a [`RouteCache`] knows when its copy
    /// is stale without taking the lock.
    generation: AtomicU64,
    propagation: Duration,
}

/// One reader's copy of the routing table (a proxy connection's): while the
/// table has not changed, a decision reads it without the lock and the
/// reference count both proxy threads would otherwise write per request.
#[derive(Debug, Default)]
pub struct RouteCache {
    generation: u64,
    table: Option<Arc<Table>>,
}

impl Routes {
    pub fn new(propagation: Duration) -> Self {
        Routes {
            table: RwLock::new(Arc::new(HashMap::new())),
            generation: AtomicU64::new(0),
            propagation,
        }
    }

    /// Recomputes every host's target from the records; hosts whose target
    /// changed start a new propagation window at `now`.
    pub fn update(&self, zones: &[Zone], now: Instant) {
        let fresh = targets(zones);
        let mut guard = self.table.write().unwrap_or_else(|p| p.into_inner());
        let old = Arc::clone(&guard);
        let mut next = HashMap::with_capacity(fresh.len());
        for (host, target) in &fresh {
            let route = match old.get(host) {
                Some(r) if r.current == *target => *r,
                Some(r) => Route {
                    current: *target,
                    previous: effective_origin(r),
                    changed_at: now,
                },
                None => Route {
                    current: *target,
                    previous: None,
                    changed_at: now,
                },
            };
            next.insert(host.clone(), route);
        }
        for (host, r) in old.iter() {
            if !fresh.contains_key(host) {
                let route = if r.current == Target::Missing {
                    *r
                } else {
                    Route {
                        current: Target::Missing,
                        previous: effective_origin(r),
                        changed_at: now,
                    }
                };
                next.insert(host.clone(), route);
            }
        }
        *guard = Arc::new(next);
        // Under the write lock: a reader that sees the new generation reads
        // the new table.
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// One decision without a kept copy of the table (the tests' view).
    #[cfg(test)]
    fn resolve(&self, host: &str, now: Instant, viewer: Viewer) -> Target {
        self.resolve_in(&mut RouteCache::default(), host, now, viewer)
    }

    /// Picks the target for one routing decision of `viewer`'s at `now`, on
    /// `cache`, refreshed first if the table changed.
    pub fn resolve_in(
        &self,
        cache: &mut RouteCache,
        host: &str,
        now: Instant,
        viewer: Viewer,
    ) -> Target {
        let generation = self.generation.load(Ordering::Acquire);
        let table = match &cache.table {
            Some(table) if cache.generation == generation => table,
            _ => {
                let fresh = Arc::clone(&self.table.read().unwrap_or_else(|p| p.into_inner()));
                cache.generation = generation;
                cache.table.insert(fresh)
            }
        };
        let Some(route) = table.get(host) else {
            return Target::Missing;
        };
        match route.previous {
            Some(prev)
                if !viewer.has_resolved_since(route.changed_at)
                    && viewer.coin >= self.new_share(route.changed_at, now) =>
            {
                Target::Origin(prev)
            }
            _ => route.current,
        }
    }

    /// Share of decisions that see the new record, `elapsed / propagation` capped at 1.
    pub fn new_share(&self, changed_at: Instant, now: Instant) -> f64 {
        if self.propagation.is_zero() {
            return 1.0;
        }
        let elapsed = now.saturating_duration_since(changed_at).as_secs_f64();
        (elapsed / self.propagation.as_secs_f64()).min(1.0)
    }
}

fn effective_origin(r: &Route) -> Option<IpAddr> {
    match r.current {
        Target::Origin(ip) => Some(ip),
        _ => r.previous,
    }
}

fn targets(zones: &[Zone]) -> HashMap<String, Target> {
    let mut out: HashMap<String, Target> = HashMap::new();
    for zone in zones {
        for rec in &zone.records {
            if !matches!(
                rec.kind,
                RecordType::A | RecordType::AAAA | RecordType::CNAME
            ) {
                continue;
            }
            let t = match (rec.proxied, rec.origin_ip()) {
                (true, Some(ip)) => Target::Origin(ip),
                (true, None) => Target::Unroutable,
                (false, _) => Target::NotProxied,
            };
            let entry = out.entry(rec.name.clone()).or_insert(t);
            // A proxied origin wins over anything else for the same name.
            if rank(t) > rank(*entry) {
                *entry = t;
            }
        }
    }
    out
}

fn rank(t: Target) -> u8 {
    match t {
        Target::Origin(_) => 3,
        Target::Unroutable => 2,
        Target::NotProxied => 1,
        Target::Missing => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::{new_id, Record};
    use chrono::Utc;

    fn zone(content: &str, proxied: bool) -> Vec<Zone> {
        let now = Utc::now();
        vec![Zone {
            id: new_id(),
            name: "z.test".into(),
            created_on: now,
            modified_on: now,
            records: vec![Record {
                id: new_id(),
                name: "shop.z.test".into(),
                kind: RecordType::A,
                content: content.into(),
                proxied,
                ttl: 1,
                priority: None,
                comment: None,
                tags: vec![],
                created_on: now,
                modified_on: now,
            }],
        }]
    }

    fn ip(s: &str) -> Target {
        Target::Origin(s.parse().unwrap())
    }

    #[test]
    fn share_of_new_origin_rises_linearly_across_the_window() {
        let routes = Routes::new(Duration::from_secs(10));
        let t0 = Instant::now();
        routes.update(&zone("127.0.0.2", true), t0);
        assert_eq!(
            routes.resolve("shop.z.test", t0, Viewer::at(0.99)),
            ip("127.0.0.2")
        );
        routes.update(&zone("127.0.0.3", true), t0);
        let at = |secs| t0 + Duration::from_secs(secs);
        // At 3 s, 30 % of decisions see the new record.
        assert_eq!(
            routes.resolve("shop.z.test", at(3), Viewer::at(0.29)),
            ip("127.0.0.3")
        );
        assert_eq!(
            routes.resolve("shop.z.test", at(3), Viewer::at(0.31)),
            ip("127.0.0.2")
        );
        assert_eq!(
            routes.resolve("shop.z.test", at(10), Viewer::at(0.999)),
            ip("127.0.0.3")
        );
        assert!((routes.new_share(t0, at(5)) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn zero_window_switches_at_once() {
        let routes = Routes::new(Duration::ZERO);
        let t0 = Instant::now();
        routes.update(&zone("127.0.0.2", true), t0);
        routes.update(&zone("127.0.0.3", true), t0);
        assert_eq!(
            routes.resolve("shop.z.test", t0, Viewer::at(0.999)),
            ip("127.0.0.3")
        );
    }

    #[test]
    fn unproxied_and_unknown_hosts() {
        let routes = Routes::new(Duration::ZERO);
        routes.update(&zone("127.0.0.2", false), Instant::now());
        assert_eq!(
            routes.resolve("shop.z.test", Instant::now(), Viewer::at(0.5)),
            Target::NotProxied
        );
        assert_eq!(
            routes.resolve("nope.z.test", Instant::now(), Viewer::at(0.5)),
            Target::Missing
        );
        routes.update(&[], Instant::now());
        assert_eq!(
            routes.resolve("shop.z.test", Instant::now(), Viewer::at(0.5)),
            Target::Missing
        );
    }

    #[test]
    fn a_viewer_that_re_resolved_after_the_change_sees_it_whatever_its_coin() {
        let routes = Routes::new(Duration::from_secs(10));
        let t0 = Instant::now();
        routes.update(&zone("127.0.0.2", true), t0);
        routes.update(&zone("127.0.0.3", true), t0 + Duration::from_secs(1));
        let late = Viewer::at(0.99);
        let at = t0 + Duration::from_secs(2);
        assert_eq!(routes.resolve("shop.z.test", at, late), ip("127.0.0.2"));
        let resolved_before = Viewer {
            resolved_at: Some(t0),
            ..late
        };
        assert_eq!(
            routes.resolve("shop.z.test", at, resolved_before),
            ip("127.0.0.2"),
            "re-resolved before the change: only its moment counts"
        );
        let resolved_after = Viewer {
            resolved_at: Some(at),
            ..late
        };
        assert_eq!(
            routes.resolve("shop.z.test", at, resolved_after),
            ip("127.0.0.3")
        );
    }

    #[test]
    fn unproxying_keeps_old_origin_during_the_window() {
        let routes = Routes::new(Duration::from_secs(10));
        let t0 = Instant::now();
        routes.update(&zone("127.0.0.2", true), t0);
        routes.update(&zone("127.0.0.2", false), t0);
        assert_eq!(
            routes.resolve("shop.z.test", t0, Viewer::at(0.5)),
            ip("127.0.0.2")
        );
        assert_eq!(
            routes.resolve("shop.z.test", t0 + Duration::from_secs(11), Viewer::at(0.5)),
            Target::NotProxied
        );
    }
}
