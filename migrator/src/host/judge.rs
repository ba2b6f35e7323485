//! The rules: each host's facts against what the planned load needs. Pure,
//! so every threshold is tested without a machine to match.

use std::time::Duration;

use super::probe::Facts;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Measured, not a concern here (a loopback-only run).
    Skipped,
    /// The run may go on; `--strict` refuses it.
    Warn,
    /// The host cannot carry the load: refused.
    Fatal,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Skipped => "skipped",
            Level::Warn => "WARN",
            Level::Fatal => "FATAL",
        }
    }
}

/// One check on one host: what was measured, what it should be, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub host: String,
    pub check: &'static str,
    pub measured: String,
    pub target: String,
    pub level: Level,
    /// One line: the command that fixes it (empty when fine).
    pub fix: String,
}

impl Finding {
    pub fn message(&self) -> String {
        format!(
            "{}: {} is {} (target {}){}",
            self.host,
            self.check,
            self.measured,
            self.target,
            if self.fix.is_empty() {
                String::new()
            } else {
                format!(" — fix: {}", self.fix)
            }
        )
    }
}

/// The planned load the hosts are judged against.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub rate: f64,
    /// The feeder's request timeout: how long a burst may queue.
    pub timeout: Duration,
    /// Connections the feeder may open: one per request in flight, up to
    /// its default cap (`feeder::options::DEFAULT_MAX_CONNECTIONS`).
    pub concurrency: u64,
    /// How long the store takes writes.
    pub duration: Duration,
    pub clock_tolerance: Duration,
    /// Every address is loopback: network limits cannot matter.
    pub loopback: bool,
}

impl Load {
    /// Connections that may wait in a listen queue: a timeout's worth of
    /// arrivals at the planned rate.
    pub fn backlog(&self) -> u64 {
        ((self.rate * self.timeout.as_secs_f64()).ceil() as u64).clamp(128, 65_535)
    }

    /// Conntrack entries the load may add: every connection twice (both
    /// directions through a proxy) and a minute of new ones if keep-alive fails.
    fn conntrack(&self) -> u64 {
        self.concurrency
            .saturating_mul(2)
            .saturating_add((self.rate * 60.0) as u64)
    }

    /// Bytes the store needs for the run: ~4 KiB an order (event, index, WAL).
    fn store_bytes(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64() * 4096.0) as u64
    }
}

/// What a host is, which decides the checks that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This machine, driving the load (the feeder's side).
    Driver,
    /// A, serving now.
    A,
    /// B, not started yet.
    B,
    Store,
}

const TUNE: &str = "scripts/provision/tune.sh --rate";

/// Judges one host.
pub fn judge(role: Role, host: &str, f: &Facts, load: &Load) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |check, measured: String, target: String, level, fix: String| {
        out.push(Finding {
            host: host.to_string(),
            check,
            measured,
            target,
            level,
            fix: if level == Level::Ok || level == Level::Skipped {
                String::new()
            } else {
                fix
            },
        })
    };
    // tune.sh takes a whole rate.
    let rate = load.rate.ceil() as u64;
    let net_level = |bad: bool| match (bad, load.loopback) {
        (_, true) => Level::Skipped,
        (true, false) => Level::Warn,
        (false, false) => Level::Ok,
    };
    match role {
        Role::Driver => {
            if let Some(n) = f.nofile_soft {
                let need = load.concurrency.saturating_add(64);
                let level = if n < 128 {
                    Level::Fatal
                } else if n < need {
                    Level::Warn
                } else {
                    Level::Ok
                };
                add(
                    "open files (feeder)",
                    show(n),
                    format!("≥ {need}"),
                    level,
                    format!("ulimit -n {need} before the run"),
                );
            }
            if let Some((lo, hi)) = f.port_range {
                let ports = hi.saturating_sub(lo) + 1;
                // Closed sockets linger in TIME_WAIT for ~60 s.
                let need = load.concurrency.max(rate * 60).min(64_512);
                add(
                    "ephemeral ports",
                    format!("{lo}-{hi} ({ports})"),
                    format!("≥ {need} ports"),
                    if ports < need { Level::Warn } else { Level::Ok },
                    format!("sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\" (persist: {TUNE} {rate})"),
                );
            }
        }
        Role::A | Role::B => {
            let need = load.concurrency.saturating_add(1024);
            let measured = match role {
                Role::A => f
                    .listener
                    .as_ref()
                    .map(|(pid, n)| (*n, format!("pid {pid}"))),
                _ => None,
            }
            .or_else(|| f.unit_nofile.map(|n| (Some(n), "its systemd unit".into())))
            .or_else(|| {
                f.nofile_soft
                    .map(|n| (Some(n), "a shell's soft limit".into()))
            });
            match measured {
                Some((Some(n), from)) => add(
                    "open files (service)",
                    format!("{} ({from})", show(n)),
                    format!("≥ {need}"),
                    if n < need { Level::Warn } else { Level::Ok },
                    format!("LimitNOFILE={need} in the unit (scripts/provision/ installs it)"),
                ),
                Some((None, from)) => add(
                    "open files (service)",
                    format!("unreadable ({from})"),
                    format!("≥ {need}"),
                    Level::Warn,
                    "run the check as root so /proc/PID/limits is readable".into(),
                ),
                None => {}
            }
            let backlog = load.backlog();
            if let Some(n) = f.somaxconn {
                add(
                    "somaxconn",
                    show(n),
                    format!("≥ {backlog}"),
                    net_level(n < backlog),
                    format!("sysctl -w net.core.somaxconn={backlog} (persist: {TUNE} {rate})"),
                );
            }
            if let Some(n) = f.syn_backlog {
                add(
                    "SYN backlog",
                    show(n),
                    format!("≥ {backlog}"),
                    net_level(n < backlog),
                    format!(
                        "sysctl -w net.ipv4.tcp_max_syn_backlog={backlog} (persist: {TUNE} {rate})"
                    ),
                );
            }
        }
        Role::Store => {
            if let Some((dir, free)) = &f.disk_free {
                let need = load.store_bytes();
                let target = need.saturating_add(1 << 30);
                let level = if *free < need {
                    Level::Fatal
                } else if *free < target {
                    Level::Warn
                } else {
                    Level::Ok
                };
                add(
                    "free disk",
                    format!("{} at {dir}", bytes(*free)),
                    format!("≥ {}", bytes(target)),
                    level,
                    "free space or grow the volume before the run".into(),
                );
            }
        }
    }
    if let (Some(max), Some(count)) = (f.conntrack_max, f.conntrack_count) {
        let need = load.conntrack();
        add(
            "conntrack",
            format!("{count} of {max}"),
            format!("{need} free"),
            net_level(max.saturating_sub(count) < need),
            format!(
                "sysctl -w net.netfilter.nf_conntrack_max={} (persist: {TUNE} {rate})",
                count + need * 2
            ),
        );
    }
    if let Some(c) = f.clock {
        let tol = load.clock_tolerance.as_millis() as i64;
        let off = c.offset_ms.abs() - c.uncertainty_ms;
        add(
            "clock offset",
            format!("{:+} ms (± {} ms)", c.offset_ms, c.uncertainty_ms),
            format!("within ± {tol} ms"),
            if off > tol { Level::Warn } else { Level::Ok },
            "turn on NTP on both hosts: timedatectl set-ntp true".into(),
        );
    }
    out
}

fn show(n: u64) -> String {
    if n == u64::MAX {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if n as f64 >= GIB {
        format!("{:.1} GiB", n as f64 / GIB)
    } else {
        format!("{:.0} MiB", n as f64 / MIB)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::probe::ClockOffset;
    use super::*;

    fn load(loopback: bool) -> Load {
        Load {
            rate: 1000.0,
            timeout: Duration::from_secs(10),
            concurrency: 10_000,
            duration: Duration::from_secs(60),
            clock_tolerance: Duration::from_millis(100),
            loopback,
        }
    }

    fn levels(f: &[Finding]) -> Vec<(&'static str, Level)> {
        f.iter().map(|x| (x.check, x.level)).collect()
    }

    #[test]
    fn a_roomy_host_is_fine() {
        let roomy = Facts {
            nofile_soft: Some(1 << 20),
            port_range: Some((1024, 65535)),
            somaxconn: Some(65535),
            syn_backlog: Some(65535),
            conntrack_max: Some(1 << 20),
            conntrack_count: Some(10),
            listener: Some((7, Some(1 << 20))),
            clock: Some(ClockOffset {
                offset_ms: 3,
                uncertainty_ms: 1,
            }),
            ..Facts::default()
        };
        for role in [Role::Driver, Role::A, Role::B, Role::Store] {
            let f = judge(role, "h", &roomy, &load(false));
            assert!(
                f.iter().all(|x| x.level == Level::Ok && x.fix.is_empty()),
                "{f:?}"
            );
        }
    }

    #[test]
    fn a_tight_host_gets_a_fix_for_each_limit() {
        let tight = Facts {
            nofile_soft: Some(1024),
            port_range: Some((60000, 60999)),
            somaxconn: Some(4096),
            syn_backlog: Some(512),
            conntrack_max: Some(65536),
            conntrack_count: Some(60000),
            clock: Some(ClockOffset {
                offset_ms: -900,
                uncertainty_ms: 5,
            }),
            ..Facts::default()
        };
        let d = judge(Role::Driver, "here", &tight, &load(false));
        assert_eq!(
            levels(&d),
            vec![
                ("open files (feeder)", Level::Warn),
                ("ephemeral ports", Level::Warn),
                ("conntrack", Level::Warn),
                ("clock offset", Level::Warn)
            ]
        );
        let b = judge(Role::B, "b", &tight, &load(false));
        let somaxconn = b.iter().find(|x| x.check == "somaxconn").unwrap();
        assert_eq!(somaxconn.target, "≥ 10000", "rate × timeout");
        assert!(
            somaxconn.fix.contains("net.core.somaxconn=10000"),
            "{somaxconn:?}"
        );
        assert!(
            b.iter()
                .any(|x| x.measured.contains("a shell's soft limit")),
            "{b:?}"
        );
        // On loopback the network limits cannot matter: skipped, no fix.
        let lo = judge(Role::B, "b", &tight, &load(true));
        for x in lo
            .iter()
            .filter(|x| ["somaxconn", "SYN backlog", "conntrack"].contains(&x.check))
        {
            assert_eq!((x.level, x.fix.as_str()), (Level::Skipped, ""), "{x:?}");
        }
    }

    #[test]
    fn what_b_will_run_with_prefers_the_unit() {
        let f = Facts {
            nofile_soft: Some(1024),
            unit_nofile: Some(1 << 20),
            ..Facts::default()
        };
        let b = judge(Role::B, "b", &f, &load(false));
        assert_eq!(b[0].level, Level::Ok, "{b:?}");
        assert!(b[0].measured.contains("systemd unit"));
    }

    #[test]
    fn hopeless_limits_and_a_full_disk_are_fatal() {
        let f = Facts {
            nofile_soft: Some(64),
            disk_free: Some(("/var/lib/postgresql".into(), 10 << 20)),
            ..Facts::default()
        };
        assert_eq!(
            judge(Role::Driver, "h", &f, &load(true))[0].level,
            Level::Fatal
        );
        let s = judge(Role::Store, "s", &f, &load(false));
        assert_eq!(s[0].level, Level::Fatal, "{s:?}");
        assert!(
            s[0].measured.contains("10 MiB at /var/lib/postgresql"),
            "{s:?}"
        );
    }

    #[test]
    fn the_clock_counts_its_uncertainty() {
        let f = |offset_ms, uncertainty_ms| Facts {
            clock: Some(ClockOffset {
                offset_ms,
                uncertainty_ms,
            }),
            ..Facts::default()
        };
        assert_eq!(
            judge(Role::A, "a", &f(150, 60), &load(false))[0].level,
            Level::Ok
        );
        assert_eq!(
            judge(Role::A, "a", &f(-150, 10), &load(false))[0].level,
            Level::Warn
        );
    }
}
