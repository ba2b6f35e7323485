//! The plan: what to migrate, how to move traffic, how much load, which limits.
//!
//! A plan is a TOML file (see `docs/plan.md`) whose values flags may override.
//! Overrides are applied to the parsed document before it is typed, so a key
//! set by a flag is validated exactly like one written in the file, and every
//! error names the key it is about. Nothing is started before the plan is valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use handover_contract::duration;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::report::Budgets;

/// The production Cloudflare API.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4/";

/// The whole plan, validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The origin that serves now.
    pub a: Origin,
    /// The origin that takes over.
    pub b: Origin,
    pub switch: SwitchPlan,
    pub feeder: FeederPlan,
    pub budgets: Budgets,
    pub timeouts: Timeouts,
    pub converge: ConvergePlan,
    pub drain: DrainPlan,
    pub watch: WatchPlan,
    pub host_checks: HostChecks,
}

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
    /// Load on A before the flip (counted from the feeder's start).
    #[serde(default = "default_run_before", with = "duration::serde_str")]
    pub run_before_flip: Duration,
    /// Load on B after A is drained and stopped.
    #[serde(default = "default_run_after", with = "duration::serde_str")]
    pub run_after_flip: Duration,
    /// Order-id prefix; unique per run by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
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
            timeout: default_feeder_timeout(),
            resolve: BTreeMap::new(),
            ack_log: None,
            report: None,
            run_before_flip: default_run_before(),
            run_after_flip: default_run_after(),
            run_id: None,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConvergePlan {
    /// Largest `head - applied` on B that counts as caught up.
    pub max_lag: u64,
    /// How long B must stay within `max_lag` (and have reached the head once).
    #[serde(with = "duration::serde_str")]
    pub stable_for: Duration,
}

impl Default for ConvergePlan {
    fn default() -> Self {
        ConvergePlan {
            max_lag: 100,
            stable_for: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainPlan {
    /// A counts as drained once its `requests_total` has not moved for this long
    /// (and `in_flight` is 0). Longer than the proxy's idle timeout is safest.
    #[serde(with = "duration::serde_str")]
    pub quiet: Duration,
}

impl Default for DrainPlan {
    fn default() -> Self {
        DrainPlan {
            quiet: Duration::from_secs(2),
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
    /// Check this host's open-file limit, ephemeral port range and conntrack
    /// table against the planned load (warnings unless clearly insufficient).
    pub enabled: bool,
}

impl Default for HostChecks {
    fn default() -> Self {
        HostChecks { enabled: true }
    }
}

/// A plan error: names the key (or file) it is about. Nothing has run yet.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plan {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("plan key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("override {arg:?}: {message}")]
    Override { arg: String, message: String },
}

impl PlanError {
    fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        PlanError::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Known top-level sections, so a typo is an error instead of a silent default.
const SECTIONS: &[&str] = &[
    "a",
    "b",
    "switch",
    "feeder",
    "budgets",
    "timeouts",
    "converge",
    "drain",
    "watch",
    "host_checks",
];

impl Plan {
    /// Reads `path` (if any), applies `overrides` (`dotted.key`, TOML value or
    /// bare string), types and validates the result.
    pub fn load(path: Option<&Path>, overrides: &[(String, String)]) -> Result<Plan, PlanError> {
        let mut doc = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| PlanError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>().map_err(|e| PlanError::Syntax {
                    path: p.to_path_buf(),
                    message: one_line(&text, &e),
                })?
            }
            None => toml::Table::new(),
        };
        for (key, value) in overrides {
            set_key(&mut doc, key, value)?;
        }
        Plan::from_table(doc)
    }

    /// Parses a whole plan from TOML text (no overrides).
    pub fn from_toml(text: &str) -> Result<Plan, PlanError> {
        let doc = text.parse::<toml::Table>().map_err(|e| PlanError::Syntax {
            path: PathBuf::from("<text>"),
            message: one_line(text, &e),
        })?;
        Plan::from_table(doc)
    }

    /// Types and validates a parsed document, section by section so each
    /// error names its key.
    pub fn from_table(mut doc: toml::Table) -> Result<Plan, PlanError> {
        if let Some(unknown) = doc.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(PlanError::key(
                unknown.clone(),
                format!("unknown section (expected one of: {})", SECTIONS.join(", ")),
            ));
        }
        let plan = Plan {
            a: required(&mut doc, "a")?,
            b: required(&mut doc, "b")?,
            switch: required(&mut doc, "switch")?,
            feeder: optional(&mut doc, "feeder")?,
            budgets: optional(&mut doc, "budgets")?,
            timeouts: optional(&mut doc, "timeouts")?,
            converge: optional(&mut doc, "converge")?,
            drain: optional(&mut doc, "drain")?,
            watch: optional(&mut doc, "watch")?,
            host_checks: optional(&mut doc, "host_checks")?,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Semantic checks serde cannot express.
    pub fn validate(&self) -> Result<(), PlanError> {
        for (name, o) in [("a", &self.a), ("b", &self.b)] {
            check_http(&format!("{name}.url"), &o.url)?;
            if let Some(h) = &o.health_url {
                check_http(&format!("{name}.health_url"), h)?;
            }
            if o.address.trim().is_empty() {
                return Err(PlanError::key(
                    format!("{name}.address"),
                    "must not be empty",
                ));
            }
            for (field, cmd) in [("start", &o.start), ("stop", &o.stop)] {
                if cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
                    return Err(PlanError::key(
                        format!("{name}.{field}"),
                        "must not be empty (leave it out instead)",
                    ));
                }
            }
        }
        if self.a.address == self.b.address {
            return Err(PlanError::key(
                "b.address",
                format!("is the same as a.address ({})", self.a.address),
            ));
        }
        if self.a.url == self.b.url {
            return Err(PlanError::key(
                "b.url",
                format!("is the same as a.url ({})", self.a.url),
            ));
        }
        if self.b.start.is_none() {
            return Err(PlanError::key("b.start", "missing: how to start B"));
        }
        if self.a.stop.is_none() {
            return Err(PlanError::key("a.stop", "missing: how to stop A"));
        }
        match &self.switch {
            SwitchPlan::Cloudflare(cf) => {
                if cf.zone.trim().is_empty() {
                    return Err(PlanError::key("switch.zone", "must not be empty"));
                }
                if cf.record.trim().is_empty() {
                    return Err(PlanError::key("switch.record", "must not be empty"));
                }
                check_http("switch.api_base", &cf.api_base)?;
                if cf.api_base.cannot_be_a_base() {
                    return Err(PlanError::key("switch.api_base", "must be a base URL"));
                }
            }
            SwitchPlan::Command(c) => {
                if c.flip.trim().is_empty() {
                    return Err(PlanError::key("switch.flip", "must not be empty"));
                }
                if c.read.trim().is_empty() {
                    return Err(PlanError::key("switch.read", "must not be empty"));
                }
            }
        }
        let f = &self.feeder;
        match f.mode {
            FeederMode::InProcess => {
                let Some(target) = &f.target else {
                    return Err(PlanError::key(
                        "feeder.target",
                        "missing: the public URL to send orders to",
                    ));
                };
                check_http("feeder.target", target)?;
                if !(f.rate.is_finite() && f.rate > 0.0) {
                    return Err(PlanError::key(
                        "feeder.rate",
                        format!("must be a positive number, got {}", f.rate),
                    ));
                }
                if f.max_in_flight == Some(0) {
                    return Err(PlanError::key("feeder.max_in_flight", "must be at least 1"));
                }
                if f.timeout.is_zero() {
                    return Err(PlanError::key("feeder.timeout", "must be more than 0"));
                }
            }
            FeederMode::External => {
                if f.ack_log.is_none() {
                    return Err(PlanError::key(
                        "feeder.ack_log",
                        "missing: the external feeder's ack log",
                    ));
                }
            }
        }
        if let Some(id) = &f.run_id {
            let ok = !id.is_empty()
                && id.len() <= 40
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
            if !ok {
                return Err(PlanError::key(
                    "feeder.run_id",
                    "must be 1-40 of A-Z a-z 0-9 _ . : -",
                ));
            }
        }
        if !(self.budgets.max_gap_ms.is_finite() && self.budgets.max_gap_ms >= 0.0) {
            return Err(PlanError::key(
                "budgets.max_gap_ms",
                "must be a non-negative number",
            ));
        }
        for (key, d) in [
            ("timeouts.health", self.timeouts.health),
            ("timeouts.converge", self.timeouts.converge),
            ("timeouts.flip", self.timeouts.flip),
            ("timeouts.drain", self.timeouts.drain),
            ("timeouts.stop", self.timeouts.stop),
            ("timeouts.reconcile", self.timeouts.reconcile),
        ] {
            if d.is_zero() {
                return Err(PlanError::key(key, "must be more than 0"));
            }
        }
        if self.drain.quiet >= self.timeouts.drain {
            return Err(PlanError::key(
                "drain.quiet",
                "must be shorter than timeouts.drain",
            ));
        }
        if self.converge.stable_for >= self.timeouts.converge {
            return Err(PlanError::key(
                "converge.stable_for",
                "must be shorter than timeouts.converge",
            ));
        }
        Ok(())
    }

    /// Failures after the flip that trigger a rollback.
    pub fn watch_failed(&self) -> u64 {
        self.watch.failed.unwrap_or(self.budgets.failed)
    }

    /// The plan as TOML (what `--dry-run` prints and the demo writes).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render plan: {e}\n"))
    }
}

/// A TOML syntax error as one line: `line 3, column 7: expected a value`.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

fn check_http(key: &str, url: &Url) -> Result<(), PlanError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PlanError::key(key, format!("{url} is not an http(s) URL")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(PlanError::key(key, format!("{url} has no host")));
    }
    Ok(())
}

fn section_error(key: &str, e: toml::de::Error) -> PlanError {
    PlanError::key(key, e.message().trim().to_string())
}

fn required<T: DeserializeOwned>(doc: &mut toml::Table, key: &str) -> Result<T, PlanError> {
    match doc.remove(key) {
        Some(v) => T::deserialize(v).map_err(|e| section_error(key, e)),
        None => Err(PlanError::key(key, "missing section")),
    }
}

fn optional<T: DeserializeOwned + Default>(
    doc: &mut toml::Table,
    key: &str,
) -> Result<T, PlanError> {
    match doc.remove(key) {
        Some(v) => T::deserialize(v).map_err(|e| section_error(key, e)),
        None => Ok(T::default()),
    }
}

/// Sets `dotted.key = value` in `doc`. The value is read as TOML (`5`,
/// `"5s"`, `true`, `{ "h" = "1.2.3.4:80" }`), falling back to a plain string.
pub fn set_key(doc: &mut toml::Table, key: &str, value: &str) -> Result<(), PlanError> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(PlanError::Override {
            arg: format!("{key}={value}"),
            message: "the key must be dotted words, e.g. feeder.rate".into(),
        });
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, parents) = parts.split_last().unwrap_or((&"", &[]));
    let mut table = doc;
    for p in parents {
        let entry = table
            .entry((*p).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(PlanError::Override {
                    arg: format!("{key}={value}"),
                    message: format!("`{p}` is not a table"),
                })
            }
        };
    }
    table.insert((*last).to_string(), parsed);
    Ok(())
}

/// Parses `KEY=VALUE` (for `--set`).
pub fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!(
            "expected KEY=VALUE, e.g. feeder.rate=500, got {s:?}"
        )),
    }
}

/// Replaces `{name}` placeholders in a command template. Values are inserted
/// as they are: the plan's author controls both the template and the values.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[a]
url = "http://10.0.0.1:8080/"
address = "10.0.0.1"
stop = "ssh root@10.0.0.1 docker stop shop"

[b]
url = "http://10.0.0.2:8080/"
address = "10.0.0.2"
start = "ssh root@10.0.0.2 docker run -d --name shop shop:latest"

[switch]
kind = "cloudflare"
zone = "example.com"
record = "shop.example.com"

[feeder]
target = "https://shop.example.com/"
rate = 500
run_before_flip = "3s"
"#;

    fn err(text: &str) -> String {
        Plan::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn good_plan_parses_with_defaults() {
        let p = Plan::from_toml(GOOD).unwrap();
        assert_eq!(p.feeder.rate, 500.0);
        assert_eq!(p.feeder.run_before_flip, Duration::from_secs(3));
        assert_eq!(p.feeder.run_after_flip, Duration::from_secs(5));
        assert_eq!(p.a.health().as_str(), "http://10.0.0.1:8080/health");
        assert_eq!(p.timeouts.converge, Duration::from_secs(60));
        assert_eq!(p.budgets.failed, 0);
        match &p.switch {
            SwitchPlan::Cloudflare(cf) => assert_eq!(cf.api_base.as_str(), CLOUDFLARE_API),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plan_round_trips_through_toml() {
        let p = Plan::from_toml(GOOD).unwrap();
        let again = Plan::from_toml(&p.to_toml()).unwrap();
        assert_eq!(again.to_toml(), p.to_toml());
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(&GOOD.replace("rate = 500", "rate = 500\nrat = 5"));
        assert!(e.contains("`feeder`") && e.contains("rat"), "{e}");
        let e = err(&format!("{GOOD}\n[budget]\nfailed = 1\n"));
        assert!(
            e.contains("`budget`") && e.contains("unknown section"),
            "{e}"
        );
        let e = err(&GOOD.replace("zone = ", "zonee = \"x\"\nzone = "));
        assert!(e.contains("zonee"), "{e}");
    }

    #[test]
    fn missing_fields_are_named() {
        let e = err(&GOOD.replace("address = \"10.0.0.2\"", ""));
        assert!(e.contains("`b`") && e.contains("address"), "{e}");
        let e = err(&GOOD.replace("target = \"https://shop.example.com/\"", ""));
        assert!(e.contains("feeder.target"), "{e}");
        let e = err(&GOOD.replace("start = ", "#"));
        assert!(e.contains("b.start"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = err(&GOOD.replace("rate = 500", "rate = -1"));
        assert!(e.contains("feeder.rate"), "{e}");
        let e = err(&GOOD.replace("http://10.0.0.2:8080/", "not a url"));
        assert!(e.contains("`b`"), "{e}");
        let e = err(&GOOD.replace("http://10.0.0.2:8080/", "ftp://10.0.0.2/"));
        assert!(e.contains("b.url"), "{e}");
        let e = err(&GOOD.replace("\"10.0.0.2\"", "\"10.0.0.1\""));
        assert!(e.contains("b.address"), "{e}");
        let e = err(&GOOD.replace("kind = \"cloudflare\"", "kind = \"carrier-pigeon\""));
        assert!(
            e.contains("`switch`") && e.contains("carrier-pigeon"),
            "{e}"
        );
        let e = err(&GOOD.replace("run_before_flip = \"3s\"", "run_before_flip = \"soon\""));
        assert!(e.contains("`feeder`") && e.contains("soon"), "{e}");
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.toml");
        std::fs::write(&path, GOOD).unwrap();
        let p = Plan::load(
            Some(&path),
            &[
                ("feeder.rate".into(), "1000".into()),
                ("timeouts.drain".into(), "90s".into()),
                (
                    "switch.api_base".into(),
                    "http://127.0.0.1:9/client/v4/".into(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(p.feeder.rate, 1000.0);
        assert_eq!(p.timeouts.drain, Duration::from_secs(90));
        let e = Plan::load(Some(&path), &[("feeder.rate".into(), "0".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("feeder.rate"), "{e}");
        let e = Plan::load(Some(&dir.path().join("nope.toml")), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn command_switch_parses() {
        let text = GOOD.replace(
            "kind = \"cloudflare\"\nzone = \"example.com\"\nrecord = \"shop.example.com\"",
            "kind = \"command\"\nflip = \"lb set {to}\"\nread = \"lb get\"",
        );
        let p = Plan::from_toml(&text).unwrap();
        assert!(matches!(p.switch, SwitchPlan::Command(_)));
    }

    #[test]
    fn fill_replaces_placeholders() {
        assert_eq!(
            fill(
                "run {name} on {address} {address}",
                &[("name", "b"), ("address", "1.2.3.4")]
            ),
            "run b on 1.2.3.4 1.2.3.4"
        );
        assert_eq!(parse_set("a.b=1").unwrap(), ("a.b".into(), "1".into()));
        assert!(parse_set("=1").is_err());
    }
}
