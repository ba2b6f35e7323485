//! What a run is asked to do, and the checks that refuse a bad request before
//! anything is sent.

use crate::{Error, RequestTemplate};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a run needs. [`Options::new`] fills the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL, e.g. `http://shop.handover.test:8080/`.
    pub target: url::Url,
    /// Requests per second; finite and > 0.
    pub rate: f64,
    /// The share of the schedule this process sends (`--shard I/N`); `rate`
    /// is the whole schedule's.
    pub shard: crate::shard::Shard,
    /// `None`: until [`crate::Handle::stop`].
    pub duration: Option<Duration>,
    /// Per request, from the moment it is sent.
    pub timeout: Duration,
    /// `None`: rate × (timeout + 1 s) (at least 1), enough to ride out a stall
    /// as long as the timeout without missing a slot, on a busy machine too.
    pub max_in_flight: Option<usize>,
    /// JSON lines of [`handover_contract::AckRecord`], one per request sent.
    pub ack_log: Option<PathBuf>,
    /// Prefix of the order ids; unique per run so runs never collide.
    pub run_id: String,
    /// The reply header naming the instance that answered (a template's
    /// own `instance_header` or `instance_json` replaces it).
    pub instance_header: String,
    pub workload: Workload,
    /// Like curl's `--resolve`: connect HOST to ADDR, keeping the Host header.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Per-second lines and events.
    pub progress: Progress,
    /// Workers, each with its own keep-alive connection: the cap on
    /// concurrent exchanges. `None`: the in-flight cap, as far as the
    /// open-file limit allows. Slots beyond it wait for a free worker (the
    /// report's `queued_max_ms`), their latency still counted from the due
    /// time; one still waiting when its timeout runs out is missed.
    pub connections: Option<usize>,
    /// Which HTTP client carries the load.
    pub client: ClientKind,
}

/// The HTTP client implementation (see [`crate::transport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientKind {
    /// The feeder's own HTTP/1.1 client for `http`, reqwest for `https`.
    #[default]
    Auto,
    /// The feeder's own HTTP/1.1 client ([`crate::http1`]); plain `http` only.
    Http1,
    /// reqwest (with TLS), for `http` or `https`.
    Reqwest,
}

/// What each request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    /// `POST {target}/orders` with a fresh order id each time.
    Orders { users: UserSource },
    /// `GET {target}{path}`, for services that are not the example app.
    Probe { path: String },
    /// The template rendered for each slot: any service's write. Without a
    /// `body`, the example-app order, its users from `GET {target}/users`.
    Template(RequestTemplate),
}

/// Where the user ids of the orders come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSource {
    /// `GET {target}/users` once at start.
    FromApp,
    List(Vec<String>),
}

/// Where the per-second lines and instance events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Off,
    Stderr,
    Stdout,
}

impl Options {
    /// Defaults: no duration limit, 2 s timeout, derived in-flight cap, no ack
    /// log, a random run id, `X-Instance`, orders for the example-app's seeded
    /// users, no progress output.
    pub fn new(target: url::Url, rate: f64) -> Self {
        Options {
            target,
            rate,
            shard: crate::shard::Shard::WHOLE,
            duration: None,
            timeout: Duration::from_secs(2),
            max_in_flight: None,
            ack_log: None,
            run_id: random_run_id(),
            instance_header: handover_contract::INSTANCE_HEADER.to_string(),
            workload: Workload::Orders {
                users: UserSource::List(seeded_users()),
            },
            resolve: Vec::new(),
            progress: Progress::Off,
            connections: None,
            client: ClientKind::Auto,
        }
    }

    /// The rate this process sends at: its shard's share of `rate`.
    pub fn own_rate(&self) -> f64 {
        self.shard.rate(self.rate)
    }

    /// The in-flight cap actually used.
    pub fn in_flight_cap(&self) -> usize {
        self.max_in_flight
            .unwrap_or_else(|| default_in_flight_cap(self.own_rate(), self.timeout))
    }

    /// The number of workers (connections) actually used. By default a
    /// connection for every request in flight, so that during a server
    /// stall each request still reaches the server at its due time rather
    /// than queueing inside the feeder — up to [`DEFAULT_MAX_CONNECTIONS`]
    /// and what the open-file limit allows (raised to its hard limit first;
    /// see [`fd_budget`]). Workers are started on demand, so a fast server
    /// still gets few.
    pub fn connection_cap(&self) -> usize {
        self.connections
            .unwrap_or_else(|| default_connections(self.in_flight_cap()).min(fd_budget()))
            .max(1)
    }

    /// Refuses anything that would make the run meaningless or unsafe.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.rate.is_finite() || self.rate <= 0.0 {
            return Err(Error::Usage(format!(
                "rate must be a finite number > 0, got {}",
                self.rate
            )));
        }
        if self.rate > 10_000_000.0 {
            return Err(Error::Usage(format!(
                "rate {} is beyond what one feeder can pace (max 10,000,000/s)",
                self.rate
            )));
        }
        validate_target(&self.target)?;
        if self.timeout.is_zero() {
            return Err(Error::Usage("timeout must be > 0".into()));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(Error::Usage("duration must be > 0".into()));
        }
        if self.connections == Some(0) {
            return Err(Error::Usage("connections must be at least 1".into()));
        }
        if self.max_in_flight == Some(0) {
            return Err(Error::Usage("max in flight must be at least 1".into()));
        }
        validate_run_id(&self.run_id)?;
        if http::HeaderName::from_bytes(self.instance_header.as_bytes()).is_err() {
            return Err(Error::Usage(format!(
                "instance header {:?} is not a valid header name",
                self.instance_header
            )));
        }
        for (host, _) in &self.resolve {
            if host.is_empty() || host.contains(['/', ' ', ':']) {
                return Err(Error::Usage(format!("resolve: bad host name {host:?}")));
            }
        }
        match &self.workload {
            Workload::Probe { path } => {
                if !path.starts_with('/') {
                    return Err(Error::Usage(format!(
                        "probe path must start with '/', got {path:?}"
                    )));
                }
                if self.target.join(path).is_err() {
                    return Err(Error::Usage(format!(
                        "probe path {path:?} is not a valid path"
                    )));
                }
            }
            Workload::Orders {
                users: UserSource::List(users),
            } => {
                if users.is_empty() {
                    return Err(Error::Usage("the user list is empty".into()));
                }
                if let Some(bad) = users.iter().find(|u| u.is_empty() || u.len() > 256) {
                    return Err(Error::Usage(format!("bad user id {bad:?}")));
                }
            }
            Workload::Orders {
                users: UserSource::FromApp,
            } => {}
            Workload::Template(t) => t.validate()?,
        }
        Ok(())
    }
}

/// Only http and https with a host: anything else is a typo, not a target.
pub fn validate_target(target: &url::Url) -> Result<(), Error> {
    match target.scheme() {
        "http" | "https" => {}
        other => {
            return Err(Error::Usage(format!(
                "target {target}: unsupported scheme {other:?} (use http or https)"
            )))
        }
    }
    if target.host_str().is_none_or(str::is_empty) {
        return Err(Error::Usage(format!("target {target}: no host")));
    }
    if target.cannot_be_a_base() {
        return Err(Error::Usage(format!("target {target}: not a base URL")));
    }
    Ok(())
}

/// Order ids are `{run_id}-{seq:010}` and must fit the app's id rules
/// (`A-Z a-z 0-9 _ . : -`, at most 64 characters).
fn validate_run_id(run_id: &str) -> Result<(), Error> {
    let ok_chars = run_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if run_id.is_empty() || run_id.len() > 40 || !ok_chars {
        return Err(Error::Usage(format!(
            "run id {run_id:?}: 1-40 characters of A-Z a-z 0-9 _ . : -"
        )));
    }
    Ok(())
}

/// A short random id, so two runs against one store never share order ids.
pub fn random_run_id() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The example-app's seeded users `u-0001` … `u-0050`.
pub fn seeded_users() -> Vec<String> {
    (1..=50).map(|i| format!("u-{i:04}")).collect()
}

/// Descriptors kept back for everything that is not a load connection
/// (the ack log, stdio, the runtime, the report).
const FD_RESERVE: u64 = 64;

/// Connections a run opens at most unless `--connections` says otherwise.
///
/// One per request in flight (rate × timeout: 40,000 at 20,000/s) let every
/// server stall open as many connections as slots came due during it:
/// `migrator demo --rate 20000` reached 10,000+ connections, the kernel's
/// search for a free port among the TIME_WAIT sockets took 60 % of the
/// feeder's CPU (`__inet_check_established`, perf), the edge ran out of file
/// descriptors and the run collapsed. A cap of 1,024 fixed that, but each
/// open connection still costs every hop cache and wake-ups: at 20,000/s
/// the edge took 31 % of the machine with 1,024 and 25 % with 256, and the
/// run's p99 fell from 172–231 ms to 27–28 ms (`migrator demo --rate 20000
/// --set feeder.connections=N`); 30,000/s passed only with 256. 256 carry a
/// stall of 256 / rate at due time (26 ms at 10,000/s); a longer one
/// queues inside the feeder, as behind any client's connection pool, its
/// latency still counted from the due time and its wait reported as
/// `queued_max_ms`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// What the default in-flight cap allows beyond rate × timeout. In a stall
/// longer than the timeout every request holds its place for the whole
/// timeout, and the feeder ends each a little late (a timer, a busy CPU):
/// with no margin the cap was full all the while and due slots were missed,
/// 3 of 400 at 200/s on an idle machine
/// (`a_stall_longer_than_the_timeout_misses_no_slot`) and 2 in a `kill -9`
/// of a NATS stream leader on one busy core.
pub const LATE_GRACE: Duration = Duration::from_secs(1);

/// The default in-flight cap: every request that may be waiting for its
/// reply, rate × (timeout + [`LATE_GRACE`]) (at least 1, at most 1,000,000).
pub fn default_in_flight_cap(rate: f64, timeout: Duration) -> usize {
    let n = (rate * (timeout + LATE_GRACE).as_secs_f64()).ceil();
    if n.is_finite() && n >= 1.0 {
        n.min(1_000_000.0) as usize
    } else {
        1
    }
}

/// The default connection cap for an in-flight cap (before the open-file limit).
pub fn default_connections(in_flight_cap: usize) -> usize {
    in_flight_cap.min(DEFAULT_MAX_CONNECTIONS)
}

/// How many load connections the open-file limit allows. The soft limit is
/// raised to the hard one once (the usual 1,024 would cap a feeder far below
/// what a stall at thousands of requests per second needs).
pub fn fd_budget() -> usize {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
            return 1024;
        };
        let soft = if hard > soft && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            hard
        } else {
            soft
        };
        usize::try_from(soft.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(rate: f64) -> Options {
        Options::new("http://127.0.0.1:1/".parse().unwrap(), rate)
    }

    #[test]
    fn rejects_bad_rates() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(opts(r).validate(), Err(Error::Usage(_))), "{r}");
        }
        assert!(opts(0.5).validate().is_ok());
    }

    #[test]
    fn rejects_unknown_scheme_and_bad_run_id() {
        let mut o = opts(10.0);
        o.target = "ftp://x/".parse().unwrap();
        assert!(o.validate().is_err());
        let mut o = opts(10.0);
        o.run_id = "has space".into();
        assert!(o.validate().is_err());
    }

    #[test]
    fn connections_default_to_the_in_flight_cap_up_to_256() {
        // 50/s × (2 s + 1 s): one connection per request in flight.
        assert_eq!(default_connections(opts(50.0).in_flight_cap()), 150);
        assert_eq!(default_connections(opts(1000.0).in_flight_cap()), 256);
        // 20,000/s × 2 s = 40,000 in flight, but no connection storm.
        assert_eq!(
            default_connections(opts(20_000.0).in_flight_cap()),
            DEFAULT_MAX_CONNECTIONS
        );
        let mut o = opts(20_000.0);
        o.connections = Some(5000);
        assert_eq!(o.connection_cap(), 5000);
    }

    #[test]
    fn in_flight_cap_defaults_to_rate_times_timeout_and_a_grace() {
        let o = opts(1000.0);
        assert_eq!(o.in_flight_cap(), 3000);
        assert_eq!(opts(0.1).in_flight_cap(), 1);
    }

    #[test]
    fn seeded_users_match_the_example_app() {
        let u = seeded_users();
        assert_eq!(u.len(), 50);
        assert_eq!(u[0], "u-0001");
        assert_eq!(u[49], "u-0050");
    }
}
