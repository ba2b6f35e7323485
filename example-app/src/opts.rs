//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use handover_contract::duration;

/// The event-sourced order service that handover migrates.
#[derive(Debug, Clone, Parser)]
#[command(name = "example-app", version, about)]
pub struct Opts {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the chosen one is printed).
    #[arg(long, env = "HANDOVER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Event store URL: `sqlite:PATH` or `postgres://user:pass@host:port/db`.
    /// Its value is never shown by `--help` (it may carry a password).
    #[arg(
        long,
        env = "HANDOVER_STORE",
        hide_env_values = true,
        default_value = "sqlite:./events.db"
    )]
    pub store: String,

    /// Instance id sent as `X-Instance` on every reply [default: host name plus a short random suffix].
    #[arg(long, env = "HANDOVER_INSTANCE")]
    pub instance_id: Option<String>,

    /// Import companies and users from an `EventType {json}` file (idempotent).
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,

    /// Do not import the bundled seed data.
    #[arg(long)]
    pub no_seed: bool,

    /// `/health` is 503 while the projection lags the store by more than this many events.
    #[arg(long, env = "HANDOVER_MAX_LAG", default_value_t = 1000)]
    pub max_lag: u64,

    /// How long SIGTERM waits for in-flight requests before giving up.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub shutdown_timeout: Duration,

    /// How long to try reaching the store at start-up.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    pub connect_timeout: Duration,

    /// How long an append may wait for the store before the request gets 503.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub append_timeout: Duration,

    /// How often another process's commits are looked for (SQLite).
    #[arg(long, default_value = "2ms", value_parser = duration::parse)]
    pub poll_interval: Duration,

    /// Most appends one store transaction may carry.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_batch: u64,

    /// Honour the `X-Handover-Test-Delay-Ms` request header (for shutdown tests only).
    #[arg(long, hide = true)]
    pub test_hooks: bool,

    /// For rehearsals and tests only, never production: serve `/admin/faults`,
    /// which makes `/health` fail (`{"health": "fail"}`) or stops applying
    /// the log (`{"apply": "pause"}`) on request. Without it the route is a 404.
    #[arg(long)]
    pub fault_injection: bool,
}

impl Opts {
    /// The instance id: the flag, or host name plus a short random suffix.
    pub fn instance(&self) -> String {
        if let Some(id) = &self.instance_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "example-app".into());
        format!("{host}-{:04x}", rand::random::<u16>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let o = Opts::try_parse_from([
            "example-app",
            "--listen",
            "127.0.0.1:0",
            "--instance-id",
            "a",
        ])
        .expect("parse");
        assert_eq!(o.listen.port(), 0);
        assert_eq!(o.instance(), "a");
        assert_eq!(o.shutdown_timeout, Duration::from_secs(10));
        assert!(!o.test_hooks);
        assert!(!o.fault_injection);
        assert!(Opts::try_parse_from(["example-app", "--listen", "nope"]).is_err());
        assert!(Opts::try_parse_from(["example-app", "--max-batch", "0"]).is_err());
    }

    #[test]
    fn default_instance_is_host_plus_suffix() {
        let o = Opts::try_parse_from(["example-app"]).expect("parse");
        let a = o.instance();
        assert!(a.len() > 5, "{a}");
        assert_eq!(a.rsplit_once('-').map(|(_, s)| s.len()), Some(4), "{a}");
    }
}
