//! Host checks: a migration that fails because a machine ran out of file
//! descriptors, ports or conntrack entries proves nothing about the
//! service. Preflight reads this machine (the feeder's side) and, over ssh,
//! A, B and the store, and judges each against the planned load.
//!
//! - [`probe`]: the facts, read by one `sh` script here or over ssh.
//! - [`ssh`]: why a host could not be read, by cause.
//! - [`judge`]: the rules (pure): measured, target, level, the fix.

pub mod judge;
pub mod probe;
pub mod ssh;

use std::net::IpAddr;

use futures::future::try_join_all;
use futures::FutureExt;

pub use judge::{Finding, Level, Load, Role};
use probe::{Ask, Facts};
pub use ssh::HostError;

use crate::plan::{FeederMode, Origin, Plan};

/// Checks every host the plan lets us see against the load it plans
/// (returned with the findings); `Err` when one named by an `ssh` key
/// cannot be read (the run is refused: a host we cannot reach now is one we
/// cannot stop or start later).
pub async fn check(plan: &Plan) -> Result<(Load, Vec<Finding>), HostError> {
    let load = load_of(plan);
    let unit = plan.host_checks.unit.clone();
    let mut jobs = Vec::new();
    if plan.feeder.mode == FeederMode::InProcess {
        let ask = Ask {
            unit: String::new(),
            ..Ask::default()
        };
        jobs.push(
            async move {
                Ok((
                    Role::Driver,
                    "this machine".to_string(),
                    probe::local(&ask).await?,
                ))
            }
            .boxed(),
        );
    }
    for (role, name, origin) in [(Role::A, "a", &plan.a), (Role::B, "b", &plan.b)] {
        let ask = Ask {
            port: (role == Role::A)
                .then(|| origin.url.port_or_known_default())
                .flatten(),
            unit: unit.clone(),
            dir: None,
        };
        if let Some(job) = read(
            plan,
            role,
            name,
            origin.ssh.as_deref(),
            local_origin(origin),
            ask,
        ) {
            jobs.push(job);
        }
    }
    if let Some(dir) = &plan.store.data_dir {
        let ask = Ask {
            dir: Some(dir.display().to_string()),
            ..Ask::default()
        };
        if let Some(job) = read(
            plan,
            Role::Store,
            "store",
            plan.store.ssh.as_deref(),
            true,
            ask,
        ) {
            jobs.push(job);
        }
    }
    let read = try_join_all(jobs).await?;
    let findings = read
        .iter()
        .flat_map(|(role, host, facts)| judge::judge(*role, host, facts, &load))
        .collect();
    Ok((load, findings))
}

type Job<'a> = futures::future::BoxFuture<'a, Result<(Role, String, Facts), HostError>>;

/// The read of one host: over ssh when the plan names it, here when it is
/// this machine, else nothing (a host we cannot see is not guessed at).
fn read<'a>(
    plan: &'a Plan,
    role: Role,
    name: &'static str,
    ssh: Option<&'a str>,
    here: bool,
    ask: Ask,
) -> Option<Job<'a>> {
    match ssh {
        Some(target) => {
            let host = format!("{name} ({target})");
            let argv = plan.ssh.argv(target);
            let timeout = plan.ssh.connect_timeout;
            Some(
                async move {
                    let facts = probe::remote(&argv, &host, &ask, timeout).await?;
                    Ok((role, host, facts))
                }
                .boxed(),
            )
        }
        None if here => Some(
            async move {
                let mut facts = probe::local(&ask).await?;
                // This machine's limits are the driver's: only what is the
                // origin's own (its process, its unit) or the store's counts.
                if role != Role::Store {
                    facts = Facts {
                        listener: facts.listener,
                        unit_nofile: facts.unit_nofile,
                        ..Facts::default()
                    };
                }
                Ok((role, name.to_string(), facts))
            }
            .boxed(),
        ),
        None => None,
    }
}

/// The load the hosts must carry.
fn load_of(plan: &Plan) -> Load {
    let f = &plan.feeder;
    Load {
        rate: f.rate,
        timeout: f.timeout,
        // The feeder opens a connection per request in flight, up to its cap.
        concurrency: f.connections.unwrap_or_else(|| {
            feeder::options::default_connections(
                f.max_in_flight
                    .unwrap_or_else(|| feeder::options::default_in_flight_cap(f.rate, f.timeout)),
            )
        }) as u64,
        duration: f.run_before_flip
            + f.run_after_flip
            + plan.timeouts.drain
            + plan.timeouts.converge,
        clock_tolerance: plan.host_checks.clock_tolerance,
        loopback: loopback_only(plan),
    }
}

/// Every origin (and the public target) on loopback, no host over ssh: one
/// machine, where somaxconn, conntrack or clocks cannot matter.
pub fn loopback_only(plan: &Plan) -> bool {
    let no_ssh = plan.a.ssh.is_none() && plan.b.ssh.is_none() && plan.store.ssh.is_none();
    let resolved_local = plan.feeder.resolve.values().all(|a| a.ip().is_loopback());
    let target_local = plan.feeder.target.as_ref().is_none_or(|t| {
        host_is_loopback(t.host_str())
            || plan.feeder.resolve.contains_key(t.host_str().unwrap_or(""))
    });
    no_ssh && local_origin(&plan.a) && local_origin(&plan.b) && resolved_local && target_local
}

fn local_origin(o: &Origin) -> bool {
    host_is_loopback(o.url.host_str())
}

fn host_is_loopback(host: Option<&str>) -> bool {
    match host {
        Some("localhost") => true,
        Some(h) => h
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The findings as a table, for `migrator preflight` and `--dry-run`.
pub fn table(findings: &[Finding]) -> Vec<String> {
    let w =
        |f: fn(&Finding) -> usize, min: usize| findings.iter().map(f).max().unwrap_or(0).max(min);
    let (wh, wc, wm, wt) = (
        w(|f| f.host.chars().count(), 4),
        w(|f| f.check.chars().count(), 5),
        w(|f| f.measured.chars().count(), 8),
        w(|f| f.target.chars().count(), 6),
    );
    let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n.saturating_sub(s.chars().count())));
    let mut out = vec![format!(
        "{}  {}  {}  {}  RESULT",
        pad("HOST", wh),
        pad("CHECK", wc),
        pad("MEASURED", wm),
        pad("TARGET", wt)
    )];
    for f in findings {
        let mut line = format!(
            "{}  {}  {}  {}  {}",
            pad(&f.host, wh),
            pad(f.check, wc),
            pad(&f.measured, wm),
            pad(&f.target, wt),
            f.level.word()
        );
        if !f.fix.is_empty() {
            line.push_str(&format!("  fix: {}", f.fix));
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_apart() {
        assert!(host_is_loopback(Some("127.0.0.2")));
        assert!(host_is_loopback(Some("[::1]")));
        assert!(host_is_loopback(Some("localhost")));
        assert!(!host_is_loopback(Some("192.0.2.11")));
        assert!(!host_is_loopback(Some("shop.example.com")));
    }

    #[test]
    fn the_table_lines_up() {
        let f = |host: &str, level| Finding {
            host: host.into(),
            check: "somaxconn",
            measured: "4096".into(),
            target: "≥ 10000".into(),
            level,
            fix: if level == Level::Warn {
                "sysctl -w net.core.somaxconn=10000".into()
            } else {
                String::new()
            },
        };
        let t = table(&[f("a (root@192.0.2.11)", Level::Warn), f("b", Level::Ok)]);
        assert_eq!(t.len(), 3);
        assert!(t[1].contains("WARN  fix: sysctl"), "{t:?}");
        let col = |l: &str| l.find("somaxconn").unwrap();
        assert_eq!(col(&t[1]), col(&t[2]), "{t:#?}");
    }
}
