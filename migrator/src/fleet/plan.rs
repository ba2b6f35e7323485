//! The fleet plan: `[fleet]` (hosts, hold-overs, batches, retries) and
//! `[fleet.host]` (templates over `{host}`, `{holdover}`, `{name}`), beside
//! the sections of a run plan (`[switch]`, `[feeder]`, `[timeouts]`, …)
//! whose strings may use the same placeholders.
//!
//! Each host move is a whole run plan derived from these: `[a]` and `[b]`
//! come from the `[fleet.host]` templates (the host and its hold-over, one
//! way out and the other way back), the rest from the file with the
//! placeholders filled. Every host's two plans are built and validated when
//! the fleet plan is loaded, so a bad key is refused — naming it — before
//! anything starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use handover_contract::duration;
use serde::{Deserialize, Serialize};

use crate::plan::{fill, set_key, Plan, PlanError};

/// `[fleet]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// The hosts to maintain, in order: an address, or `{ address, name }`.
    pub hosts: Vec<HostEntry>,
    /// Spare hosts that carry a host's service while it is maintained.
    pub holdover: Vec<String>,
    /// Hosts maintained at once; at most the number of hold-overs.
    #[serde(default = "one")]
    pub batch: usize,
    /// Each host of a batch starts after a random delay up to this, drawn
    /// from a seed (printed, and given back with `--seed` to replay).
    #[serde(default, with = "duration::serde_str")]
    pub jitter: Duration,
    /// Verify attempts before a host is rolled back (left on its hold-over).
    #[serde(default = "three")]
    pub retries: u32,
    /// The bound of one verify attempt.
    #[serde(default = "ten_minutes", with = "duration::serde_str")]
    pub verify_timeout: Duration,
    /// The pause between two verify attempts.
    #[serde(default = "five_seconds", with = "duration::serde_str")]
    pub retry_delay: Duration,
    /// The bound of the maintenance command.
    #[serde(default = "half_hour", with = "duration::serde_str")]
    pub maintain_timeout: Duration,
    /// More failed hosts than this stop the fleet: no new host starts, the
    /// ones in progress finish. Absent: never stop for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_hosts: Option<usize>,
    /// A probe on every host's record for the whole fleet (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::WatchPlan>,
}

fn one() -> usize {
    1
}
fn three() -> u32 {
    3
}
fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn half_hour() -> Duration {
    Duration::from_secs(1800)
}

/// One host: its address and the name templates use (`{name}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostEntry {
    Address(String),
    Named { address: String, name: String },
}

impl HostEntry {
    pub fn address(&self) -> &str {
        match self {
            HostEntry::Address(a) | HostEntry::Named { address: a, .. } => a,
        }
    }

    /// The given name, else the address with `.` and `:` as `-`.
    pub fn name(&self) -> String {
        match self {
            HostEntry::Named { name, .. } => name.clone(),
            HostEntry::Address(a) => a.replace(['.', ':'], "-"),
        }
    }
}

/// `[fleet.host]`: how a host's service is reached, started and stopped (on
/// the host or a hold-over: `{address}`), maintained and verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTemplates {
    /// The service's base URL on `{address}`.
    pub url: String,
    /// Starts the service on `{address}` (the run's start command).
    pub start: String,
    /// Stops it on `{address}` (the run's stop command; `{pid}` as there).
    pub stop: String,
    /// The work done on the emptied `{host}`: a reboot, an upgrade.
    pub maintain: String,
    /// Exit 0 = `{host}` is fine and may take its service back.
    pub verify: String,
}

/// Placeholders each template may use.
const FLEET_VARS: &[&str] = &["host", "holdover", "name"];
const URL_VARS: &[&str] = &["host", "holdover", "name", "address"];
const COMMAND_VARS: &[&str] = &["host", "holdover", "name", "address", "url", "pid", "ssh"];

/// Which way a run moves the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    /// Host → hold-over.
    Out,
    /// Hold-over → host.
    Back,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Out => "out",
            Leg::Back => "back",
        }
    }
}

/// A loaded, validated fleet plan.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    pub fleet: FleetSection,
    pub host: HostTemplates,
    /// The run-plan sections, placeholders unfilled.
    rest: toml::Table,
}

impl FleetPlan {
    /// Reads `path`, applies `overrides` (`dotted.key`, value, as `--set`),
    /// types and validates the result, every host's run plans included.
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<FleetPlan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut doc = text.parse::<toml::Table>().map_err(|e| PlanError::Syntax {
            path: path.to_path_buf(),
            message: e.message().trim().replace('\n', " "),
        })?;
        for (key, value) in overrides {
            set_key(&mut doc, key, value)?;
        }
        FleetPlan::from_table(doc)
    }

    /// Types and validates a parsed fleet document.
    pub fn from_table(mut doc: toml::Table) -> Result<FleetPlan, PlanError> {
        for side in ["a", "b"] {
            if doc.contains_key(side) {
                return Err(key(
                    side,
                    "a fleet plan has no [a] or [b]: [fleet.host] templates make them per host",
                ));
            }
        }
        let Some(toml::Value::Table(mut fleet)) = doc.remove("fleet") else {
            return Err(key(
                "fleet",
                "missing section (hosts, holdover, [fleet.host])",
            ));
        };
        let host = match fleet.remove("host") {
            Some(v) => HostTemplates::deserialize(v).map_err(|e| de("fleet.host", &e))?,
            None => {
                return Err(key(
                    "fleet.host",
                    "missing section (url, start, stop, maintain, verify)",
                ))
            }
        };
        let fleet =
            FleetSection::deserialize(toml::Value::Table(fleet)).map_err(|e| de("fleet", &e))?;
        if doc.get("feeder").and_then(|f| f.get("ack_log")).is_some() {
            return Err(key(
                "feeder.ack_log",
                "the fleet writes each run's ack log under --workdir (NAME-out/back.acks.jsonl)",
            ));
        }
        if doc
            .get("feeder")
            .and_then(|f| f.get("mode"))
            .and_then(|m| m.as_str())
            .is_some_and(|m| m != "in_process")
        {
            return Err(key(
                "feeder.mode",
                "a fleet drives its own load: only \"in_process\"",
            ));
        }
        let plan = FleetPlan {
            fleet,
            host,
            rest: doc,
        };
        plan.validate()?;
        Ok(plan)
    }

    fn validate(&self) -> Result<(), PlanError> {
        let f = &self.fleet;
        if f.hosts.is_empty() {
            return Err(key("fleet.hosts", "no hosts: list at least one address"));
        }
        if f.holdover.is_empty() {
            return Err(key(
                "fleet.holdover",
                "no hold-overs: list at least one spare address",
            ));
        }
        if f.batch == 0 || f.batch > f.holdover.len() {
            return Err(key(
                "fleet.batch",
                format!(
                    "must be 1 to the number of hold-overs ({}), got {}",
                    f.holdover.len(),
                    f.batch
                ),
            ));
        }
        if f.retries == 0 {
            return Err(key("fleet.retries", "must be at least 1 (verify attempts)"));
        }
        if let Some(Err((k, message))) = f.watch.as_ref().map(|w| w.check()) {
            return Err(key(k, message));
        }
        if f.verify_timeout.is_zero() {
            return Err(key("fleet.verify_timeout", "must be more than 0s"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for h in &f.hosts {
            if h.address().trim().is_empty() {
                return Err(key("fleet.hosts", "an empty address"));
            }
            // The name goes into file names, record names and metric labels.
            let name = h.name();
            let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
            if name.is_empty() || name.len() > 63 || !name.chars().all(plain) {
                return Err(key(
                    "fleet.hosts",
                    format!("name {name:?}: 1 to 63 of A-Z a-z 0-9 . _ -"),
                ));
            }
            if !seen.insert(h.address().to_string()) || !seen.insert(format!("name:{}", h.name())) {
                return Err(key(
                    "fleet.hosts",
                    format!("{} is listed twice", h.address()),
                ));
            }
        }
        for o in &f.holdover {
            if o.trim().is_empty() || !seen.insert(o.clone()) {
                return Err(key(
                    "fleet.holdover",
                    format!("{o:?} is empty, listed twice or also a host"),
                ));
            }
        }
        let t = &self.host;
        check_vars("fleet.host.url", &t.url, URL_VARS)?;
        check_vars("fleet.host.start", &t.start, COMMAND_VARS)?;
        check_vars("fleet.host.stop", &t.stop, COMMAND_VARS)?;
        check_vars("fleet.host.maintain", &t.maintain, FLEET_VARS)?;
        check_vars("fleet.host.verify", &t.verify, FLEET_VARS)?;
        // What names a host's record may only use the fleet's placeholders
        // (other strings may hold a run plan's own, or literal braces).
        for k in ["record", "zone"] {
            if let Some(v) = self
                .rest
                .get("switch")
                .and_then(|t| t.get(k))
                .and_then(|v| v.as_str())
            {
                check_vars(&format!("switch.{k}"), v, FLEET_VARS)?;
            }
        }
        let resolve = self
            .rest
            .get("feeder")
            .and_then(|f| f.get("resolve"))
            .and_then(|r| r.as_table());
        for name in resolve.into_iter().flat_map(|r| r.keys()) {
            check_vars("feeder.resolve", name, FLEET_VARS)?;
        }
        // Every host's runs, both ways, as the fleet will run them.
        let workdir = PathBuf::from(".");
        for h in &f.hosts {
            for leg in [Leg::Out, Leg::Back] {
                self.run_plan(h, &f.holdover[0], leg, &workdir)?;
            }
        }
        if f.hosts.len() > 1 {
            let switch = |h: &HostEntry| self.filled_rest(h, &f.holdover[0]).get("switch").cloned();
            if switch(&f.hosts[0]) == switch(&f.hosts[1]) {
                return Err(key(
                    "switch",
                    "is the same for every host: give each its record (e.g. record = \"{name}.example.com\")",
                ));
            }
        }
        Ok(())
    }

    /// The run-plan sections with `host`'s placeholders filled.
    fn filled_rest(&self, host: &HostEntry, holdover: &str) -> toml::Table {
        let name = host.name();
        let vars = [
            ("host", host.address()),
            ("holdover", holdover),
            ("name", name.as_str()),
        ];
        fill_table(&self.rest, &vars)
    }

    /// The run plan that moves `host`'s service out to `holdover` or back.
    pub fn run_plan(
        &self,
        host: &HostEntry,
        holdover: &str,
        leg: Leg,
        workdir: &Path,
    ) -> Result<Plan, PlanError> {
        let mut doc = self.filled_rest(host, holdover);
        let (a, b) = match leg {
            Leg::Out => (host.address(), holdover),
            Leg::Back => (holdover, host.address()),
        };
        doc.insert("a".into(), self.origin(host, holdover, a));
        doc.insert("b".into(), self.origin(host, holdover, b));
        let ack_log = workdir.join(format!("{}-{}.acks.jsonl", host.name(), leg.as_str()));
        let ack_log = toml::Value::String(ack_log.to_string_lossy().into_owned()).to_string();
        set_key(&mut doc, "feeder.ack_log", &ack_log)?;
        Plan::from_table(doc).map_err(|e| match e {
            PlanError::Key { key, message } => PlanError::Key {
                key,
                message: format!("{message} (host {}, {} run)", host.name(), leg.as_str()),
            },
            other => other,
        })
    }

    /// `[a]` or `[b]` of a run: the service on `address`.
    fn origin(&self, host: &HostEntry, holdover: &str, address: &str) -> toml::Value {
        let name = host.name();
        let vars = [
            ("host", host.address()),
            ("holdover", holdover),
            ("name", name.as_str()),
            ("address", address),
        ];
        let mut t = toml::Table::new();
        let mut put = |k: &str, v: String| {
            t.insert(k.to_string(), toml::Value::String(v));
        };
        put("url", fill(&self.host.url, &vars));
        put("address", address.to_string());
        put("start", fill(&self.host.start, &vars));
        put("stop", fill(&self.host.stop, &vars));
        toml::Value::Table(t)
    }

    /// `host`'s maintenance command.
    pub fn maintain(&self, host: &HostEntry, holdover: &str) -> String {
        self.fleet_command(&self.host.maintain, host, holdover)
    }

    /// `host`'s verify command.
    pub fn verify(&self, host: &HostEntry, holdover: &str) -> String {
        self.fleet_command(&self.host.verify, host, holdover)
    }

    fn fleet_command(&self, template: &str, host: &HostEntry, holdover: &str) -> String {
        let name = host.name();
        fill(
            template,
            &[
                ("host", host.address()),
                ("holdover", holdover),
                ("name", name.as_str()),
            ],
        )
    }
}

fn key(k: &str, message: impl Into<String>) -> PlanError {
    PlanError::Key {
        key: k.to_string(),
        message: message.into(),
    }
}

fn de(k: &str, e: &toml::de::Error) -> PlanError {
    key(k, e.message().trim().to_string())
}

/// The `{word}` placeholders of `template`, in order.
fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find('}') {
            let word = &rest[..close];
            if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push(word);
            }
        }
    }
    out
}

/// Refuses a placeholder `template` may not use, naming `k`.
fn check_vars(k: &str, template: &str, allowed: &[&str]) -> Result<(), PlanError> {
    match placeholders(template)
        .into_iter()
        .find(|w| !allowed.contains(w))
    {
        Some(w) => Err(key(
            k,
            format!(
                "unknown placeholder {{{w}}} (here: {})",
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// `table` with `vars` filled into every string, keys included (a
/// `[feeder.resolve]` key is a record name).
fn fill_table(table: &toml::Table, vars: &[(&str, &str)]) -> toml::Table {
    table
        .iter()
        .map(|(k, v)| (fill(k, vars), fill_value(v, vars)))
        .collect()
}

fn fill_value(v: &toml::Value, vars: &[(&str, &str)]) -> toml::Value {
    match v {
        toml::Value::String(s) => toml::Value::String(fill(s, vars)),
        toml::Value::Array(a) => {
            toml::Value::Array(a.iter().map(|x| fill_value(x, vars)).collect())
        }
        toml::Value::Table(t) => toml::Value::Table(fill_table(t, vars)),
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub const GOOD: &str = r#"
[fleet]
hosts = ["10.0.0.11", { address = "10.0.0.12", name = "web2" }, "10.0.0.13"]
holdover = ["10.0.0.91", "10.0.0.92"]
batch = 2
jitter = "30s"
max_failed_hosts = 1

[fleet.host]
url = "http://{address}:8080/"
start = "ssh root@{address} docker run -d --name shop -p 8080:8080 shop:latest"
stop = "ssh root@{address} docker stop shop"
maintain = "ssh root@{host} reboot"
verify = "ssh root@{host} system-check"

[switch]
kind = "cloudflare"
zone = "example.com"
record = "{name}.example.com"

[feeder]
target = "https://{name}.example.com/"
rate = 50
"#;

    fn parse(text: &str) -> Result<FleetPlan, PlanError> {
        FleetPlan::from_table(text.parse::<toml::Table>().unwrap())
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_plan_gives_each_host_two_runs() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.fleet.retries, 3);
        assert_eq!(p.fleet.verify_timeout, Duration::from_secs(600));
        let web2 = &p.fleet.hosts[1];
        assert_eq!(web2.name(), "web2");
        assert_eq!(p.fleet.hosts[0].name(), "10-0-0-11");
        let out = p
            .run_plan(web2, "10.0.0.92", Leg::Out, Path::new("/w"))
            .unwrap();
        assert_eq!(out.a.address, "10.0.0.12");
        assert_eq!(out.b.address, "10.0.0.92");
        assert_eq!(out.b.url.as_str(), "http://10.0.0.92:8080/");
        assert!(out.b.start.as_deref().unwrap().contains("root@10.0.0.92"));
        assert_eq!(
            out.feeder.ack_log.as_deref(),
            Some(Path::new("/w/web2-out.acks.jsonl"))
        );
        let back = p
            .run_plan(web2, "10.0.0.92", Leg::Back, Path::new("/w"))
            .unwrap();
        assert_eq!(back.a.address, "10.0.0.92");
        assert_eq!(back.b.address, "10.0.0.12");
        match &back.switch {
            crate::plan::SwitchPlan::Cloudflare(c) => assert_eq!(c.record, "web2.example.com"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            p.verify(web2, "10.0.0.92"),
            "ssh root@10.0.0.12 system-check"
        );
    }

    #[test]
    fn bad_plans_name_their_key() {
        let e = err(&GOOD.replace("batch = 2", "batch = 3"));
        assert!(e.contains("fleet.batch"), "{e}");
        let e = err(&GOOD.replace(
            r#"hosts = ["10.0.0.11", { address = "10.0.0.12", name = "web2" }, "10.0.0.13"]"#,
            "hosts = []",
        ));
        assert!(e.contains("fleet.hosts"), "{e}");
        let e = err(&GOOD.replace("system-check", "system-check {hots}"));
        assert!(
            e.contains("fleet.host.verify") && e.contains("{hots}"),
            "{e}"
        );
        let e = err(&GOOD.replace("batch = 2", "batch = 2\nbatchez = 1"));
        assert!(e.contains("`fleet`") && e.contains("batchez"), "{e}");
        let e = err(&GOOD.replace("maintain = ", "#"));
        assert!(e.contains("fleet.host") && e.contains("maintain"), "{e}");
        let e = err(&GOOD.replace(
            "record = \"{name}.example.com\"",
            "record = \"shop.example.com\"",
        ));
        assert!(e.contains("`switch`"), "{e}");
        let e = err(&GOOD.replace("rate = 50", "rate = -1"));
        assert!(e.contains("feeder.rate"), "{e}");
        let e = err(&GOOD.replace("\"10.0.0.91\",", "\"10.0.0.11\","));
        assert!(e.contains("fleet.holdover"), "{e}");
        let e = err(&GOOD
            .replace("retries", "x")
            .replace("max_failed_hosts = 1", "retries = 0"));
        assert!(e.contains("fleet.retries"), "{e}");
        let e = err(&GOOD.replace("batch = 2", "batch = 2\nwatch = { path = \"health\" }"));
        assert!(e.contains("fleet.watch.path"), "{e}");
        let e = err(&GOOD.replace("name = \"web2\"", "name = \"../web2\""));
        assert!(e.contains("fleet.hosts") && e.contains("../web2"), "{e}");
        let e = err(&format!("{GOOD}\n[a]\nurl = \"http://x/\"\n"));
        assert!(e.contains("`a`"), "{e}");
        let e = err(&GOOD.replace("{name}.example.com\"\n", "{nmae}.example.com\"\n"));
        assert!(e.contains("switch.record") && e.contains("{nmae}"), "{e}");
        let e = err(&GOOD.replace("rate = 50", "rate = 50\nack_log = \"a.jsonl\""));
        assert!(e.contains("feeder.ack_log"), "{e}");
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(
            placeholders("a {host} {x_1} {} { y} }{name"),
            vec!["host", "x_1"]
        );
    }
}
