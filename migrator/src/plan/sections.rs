//! The plan's sections as typed values, with their defaults: the origins,
//! the switch, the feeder, the timeouts and the waiting steps' rules.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use handover_contract::duration;
use serde::{Deserialize, Serialize};
use url::Url;

/// The production Cloudflare API.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4/";

/// One origin server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// Base URL the migrator reaches the instance at directly (not through the switch).
    pub url: Url,
    /// Defaults to `{url}health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_url: Option<Url>,
    /// What the traffic switch points at for this origin (the record's content).
    pub address: String,
    /// Shell command (run with `sh -c`) that starts the instance. Placeholders:
    /// `{address}`, `{url}`, `{name}`. It may keep running (a local process) or
    /// return once the service is started (`docker run -d`, `systemctl start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Shell command that stops the instance gracefully. Extra placeholder:
    /// `{pid}`, the process the start command left running (empty if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Shell command that kills the instance at once (SIGKILL, as a crash
    /// would), for the `kill-a`/`kill-b` faults. Default for B: SIGKILL to
    /// the process its start command left running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<String>,
    /// The instance this origin answers as (the reply header or JSON value
    /// the feeder reads). Default: learned from the handover health document,
    /// else, for A, from the replies before the flip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// `user@host` this origin's machine answers ssh at: preflight checks
    /// its limits there, and commands may use `{ssh}` (the whole ssh
    /// invocation, with `[ssh]`'s options) to act on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
}

impl Origin {
    pub fn health(&self) -> Url {
        match &self.health_url {
            Some(u) => u.clone(),
            // A base URL always joins with a relative path.
            None => self.url.join("health").unwrap_or_else(|_| self.url.clone()),
        }
    }
}

/// How traffic moves from A to B.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SwitchPlan {
    /// A proxied DNS record through the Cloudflare v4 API (or the local edge).
    Cloudflare(CloudflarePlan),
    /// The user's own tooling.
    Command(CommandPlan),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflarePlan {
    /// Zone name (`example.com`) or its 32-hex id.
    pub zone: String,
    /// Full record name (`shop.example.com`).
    pub record: String,
    /// The API; the local edge for tests and the demo. Token: `CLOUDFLARE_API_TOKEN` only.
    #[serde(default = "default_api_base")]
    pub api_base: Url,
}

fn default_api_base() -> Url {
    // A constant, valid URL.
    Url::parse(CLOUDFLARE_API).unwrap_or_else(|_| unreachable!("constant URL"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandPlan {
    /// Moves traffic; placeholders `{from}` and `{to}` (addresses). Exit 0 = done.
    pub flip: String,
    /// Prints the address traffic currently goes to (first line of stdout).
    pub read: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FeederMode {
    /// The migrator drives the load itself (the feeder library) and knows every request.
    #[default]
    InProcess,
    /// Someone else runs `feeder`; the migrator reads its ack log at the end.
    External,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeederPlan {
    #[serde(default)]
    pub mode: FeederMode,
    /// The public URL (through the switch), e.g. `https://shop.example.com/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Url>,
    /// Orders per second.
    #[serde(default = "default_rate")]
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// The feeder's connections (`--connections`); default: one per request
    /// in flight, at most 256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    #[serde(default = "default_feeder_timeout", with = "duration::serde_str")]
    pub timeout: Duration,
    /// Connect a host name to a fixed address, like `curl --resolve`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolve: BTreeMap<String, SocketAddr>,
    /// Where the ack log is written (in process) or read (external).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_log: Option<PathBuf>,
    /// External mode: the feeder's `--report`, read if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
    /// External mode, several feeders (`feeder … --shard I/N` on several
    /// machines): their ack logs, instead of `ack_log`; reconciled as one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ack_logs: Vec<PathBuf>,
    /// Their reports, instead of `report`: awaited, then merged (counts
    /// summed, histograms merged) into the migration report's feeder section.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<PathBuf>,
    /// Load on A before the flip (counted from the feeder's start).
    #[serde(default = "default_run_before", with = "duration::serde_str")]
    pub run_before_flip: Duration,
    /// Load on B after A is drained and stopped.
    #[serde(default = "default_run_after", with = "duration::serde_str")]
    pub run_after_flip: Duration,
    /// Order-id prefix; unique per run by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// What one write is, for a service that is not the example app
    /// (method, path, headers, body template, ok statuses, where the
    /// instance is named). Absent: the example-app order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<feeder::RequestTemplate>,
}

impl FeederPlan {
    /// The ack logs to read: `ack_logs`, else `ack_log` (empty: the
    /// in-process feeder's default).
    pub fn ack_log_list(&self) -> Vec<PathBuf> {
        if self.ack_logs.is_empty() {
            self.ack_log.iter().cloned().collect()
        } else {
            self.ack_logs.clone()
        }
    }

    /// The external feeders' reports: `reports`, else `report`.
    pub fn report_list(&self) -> Vec<PathBuf> {
        if self.reports.is_empty() {
            self.report.iter().cloned().collect()
        } else {
            self.reports.clone()
        }
    }
}

fn default_rate() -> f64 {
    100.0
}
fn default_feeder_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_run_before() -> Duration {
    Duration::from_secs(5)
}
fn default_run_after() -> Duration {
    Duration::from_secs(5)
}

impl Default for FeederPlan {
    fn default() -> Self {
        FeederPlan {
            mode: FeederMode::InProcess,
            target: None,
            rate: default_rate(),
            max_in_flight: None,
            connections: None,
            timeout: default_feeder_timeout(),
            resolve: BTreeMap::new(),
            ack_log: None,
            report: None,
            ack_logs: Vec::new(),
            reports: Vec::new(),
            run_before_flip: default_run_before(),
            run_after_flip: default_run_after(),
            run_id: None,
            request: None,
        }
    }
}

/// Upper bounds of the waiting steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Start B: until its `/health` answers 200. Also preflight's health probes.
    #[serde(with = "duration::serde_str")]
    pub health: Duration,
    /// Converge: until B is within `converge.max_lag` for `converge.stable_for`.
    #[serde(with = "duration::serde_str")]
    pub converge: Duration,
    /// Flip: total time for the API calls including retries.
    #[serde(with = "duration::serde_str")]
    pub flip: Duration,
    /// Drain: until A has been quiet for `drain.quiet`.
    #[serde(with = "duration::serde_str")]
    pub drain: Duration,
    /// Stop: until the stopped instance no longer answers.
    #[serde(with = "duration::serde_str")]
    pub stop: Duration,
    /// Reconcile: until B has applied the head.
    #[serde(with = "duration::serde_str")]
    pub reconcile: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            health: Duration::from_secs(30),
            converge: Duration::from_secs(60),
            flip: Duration::from_secs(30),
            drain: Duration::from_secs(60),
            stop: Duration::from_secs(30),
            reconcile: Duration::from_secs(60),
        }
    }
}

/// `[converge]`: how B's catching up is read, and when it counts as done.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConvergePlan {
    pub kind: ConvergeKind,
    /// Largest `head - applied` on B that counts as caught up (all but `wait`).
    pub max_lag: u64,
    /// How long B must stay within `max_lag` (and have reached the head once).
    #[serde(with = "duration::serde_str")]
    pub stable_for: Duration,
    /// B's applied position (`prometheus`: `{ url, metric, labels }`;
    /// `http_json`: `{ url, pointer }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Reading>,
    /// The store's head, read from A or the store (same shapes as `applied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Reading>,
    /// `command`: prints `APPLIED HEAD` on one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `wait`: how long to give B, with nothing measured.
    #[serde(
        rename = "for",
        default,
        with = "duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub wait_for: Option<Duration>,
}

/// Where the converge step reads B's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConvergeKind {
    /// The handover health document (the example app).
    #[default]
    Health,
    /// Two Prometheus metrics: B's applied position, the store's head.
    Prometheus,
    /// Two numbers at JSON pointers of documents served over HTTP.
    HttpJson,
    /// A command printing `APPLIED HEAD`.
    Command,
    /// Nothing to measure: give B a fixed time.
    Wait,
}

/// One number read from the world: a Prometheus metric (`metric`, `labels`)
/// or a JSON pointer (`pointer`) of what `url` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reading {
    pub url: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

impl Default for ConvergePlan {
    fn default() -> Self {
        ConvergePlan {
            kind: ConvergeKind::Health,
            max_lag: 100,
            stable_for: Duration::from_secs(1),
            applied: None,
            head: None,
            command: None,
            wait_for: None,
        }
    }
}

/// `[drain]`: how A's last use is seen, and how long it must stay unused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainPlan {
    pub kind: DrainKind,
    /// A counts as drained once its activity has not moved for this long
    /// (and nothing is in flight, where the source can say). Longer than the
    /// proxy's idle timeout is safest.
    #[serde(with = "duration::serde_str")]
    pub quiet: Duration,
    /// `prometheus`: where A's request counter is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    /// `prometheus`: A's request counter (summed over `labels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `command`: prints a number that stops changing once A is unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `wait`: how long to give A, with nothing measured.
    #[serde(
        rename = "for",
        default,
        with = "duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub wait_for: Option<Duration>,
    /// What a drain that reaches `timeouts.drain` with A still in use means
    /// for the verdict (A is stopped gracefully either way).
    pub on_timeout: OnTimeout,
}

/// What a step's timeout means for the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The run fails (the default: A was not seen unused).
    #[default]
    Fail,
    /// The run goes on and may pass; the step is still recorded `timed_out`.
    Continue,
}

/// Where the drain step sees A being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DrainKind {
    /// A's handover health document: `requests_total` and `in_flight`.
    #[default]
    Health,
    /// The client's side: no reply from A's instance (needs the feeder in process).
    Replies,
    /// A Prometheus counter of A's requests.
    Prometheus,
    /// A command printing a number.
    Command,
    /// Nothing to measure: give A a fixed time.
    Wait,
}

impl Default for DrainPlan {
    fn default() -> Self {
        DrainPlan {
            kind: DrainKind::Health,
            quiet: Duration::from_secs(2),
            url: None,
            metric: None,
            labels: BTreeMap::new(),
            command: None,
            wait_for: None,
            on_timeout: OnTimeout::Fail,
        }
    }
}

/// The post-flip watch (during the drain): when B is declared failing and
/// traffic goes back to A.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchPlan {
    /// Failed requests (rejected + indeterminate) after the flip that trigger a
    /// rollback; defaults to `budgets.failed` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// B's `/health` failing for this long after the flip triggers a rollback.
    #[serde(with = "duration::serde_str")]
    pub unhealthy_for: Duration,
}

impl Default for WatchPlan {
    fn default() -> Self {
        WatchPlan {
            failed: None,
            unhealthy_for: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostChecks {
    /// Check this host (and A, B and the store over ssh) against the
    /// planned load (warnings unless clearly insufficient).
    pub enabled: bool,
    /// Warnings refuse the run too (exit 2), like `--strict`.
    pub strict: bool,
    /// The clock offset between hosts that is still fine.
    #[serde(with = "duration::serde_str")]
    pub clock_tolerance: Duration,
    /// The systemd unit whose `LimitNOFILE` B will run with.
    pub unit: String,
}

impl Default for HostChecks {
    fn default() -> Self {
        HostChecks {
            enabled: true,
            strict: false,
            clock_tolerance: Duration::from_millis(100),
            unit: DEFAULT_UNIT.to_string(),
        }
    }
}

/// The systemd unit `scripts/provision/` installs.
pub const DEFAULT_UNIT: &str = "handover-example-app";

/// `[ssh]`: how the migrator reaches the hosts named by `[a] ssh`,
/// `[b] ssh` and `[store] ssh`. Always non-interactive: a prompt for a
/// password or an unknown host key is an error, never a hang.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshPlan {
    /// Private key file (`ssh -i`); default: ssh's own (agent, ~/.ssh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<PathBuf>,
    /// Known-hosts file; default: ssh's own (~/.ssh/known_hosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// `strict` (the host key must be known) or `accept-new` (a first
    /// connection records it; a changed key is still refused).
    pub host_keys: HostKeys,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(with = "duration::serde_str")]
    pub connect_timeout: Duration,
}

impl Default for SshPlan {
    fn default() -> Self {
        SshPlan {
            identity: None,
            known_hosts: None,
            host_keys: HostKeys::Strict,
            port: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeys {
    Strict,
    AcceptNew,
}

impl SshPlan {
    /// The ssh invocation for `target` (`user@host`), as arguments.
    pub fn argv(&self, target: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["ssh".into()];
        let mut opt = |o: String| {
            a.push("-o".into());
            a.push(o);
        };
        opt("BatchMode=yes".into());
        opt(format!(
            "StrictHostKeyChecking={}",
            match self.host_keys {
                HostKeys::Strict => "yes",
                HostKeys::AcceptNew => "accept-new",
            }
        ));
        opt(format!(
            "ConnectTimeout={}",
            self.connect_timeout.as_secs().max(1)
        ));
        opt("ServerAliveInterval=5".into());
        opt("ServerAliveCountMax=3".into());
        if let Some(k) = &self.known_hosts {
            opt(format!("UserKnownHostsFile={}", k.display()));
        }
        if let Some(i) = &self.identity {
            opt("IdentitiesOnly=yes".into());
            a.push("-i".into());
            a.push(i.display().to_string());
        }
        if let Some(p) = self.port {
            a.push("-p".into());
            a.push(p.to_string());
        }
        a.push("--".into());
        a.push(target.into());
        a
    }

    /// [`Self::argv`] as one shell word list, for `{ssh}` in commands.
    pub fn command(&self, target: &str) -> String {
        self.argv(target)
            .iter()
            .map(|w| shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `w` quoted for `sh` when it needs it.
pub fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// `[store]`: the event store A and B share, for the store faults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorePlan {
    /// `sqlite:PATH` (the nemesis holds its write lock to stop it), or any
    /// store URL (for messages; passwords are never printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Stops the store (`pg_ctl stop -m fast`, `systemctl stop postgresql`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Starts it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Cuts B off the store (a firewall rule, a link down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_b: Option<String>,
    /// Reconnects B.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heal_b: Option<String>,
    /// `user@host` of the store's machine, for preflight's host checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    /// The store's data directory (on the store's machine when `ssh` is
    /// set, else here): preflight checks its free space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl StorePlan {
    /// The SQLite file, when the store is one.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.url
            .as_deref()
            .and_then(|u| u.strip_prefix("sqlite:"))
            .map(|p| PathBuf::from(p.strip_prefix("//").unwrap_or(p)))
    }
}
