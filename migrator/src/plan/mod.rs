//! The plan: what to migrate, how to move traffic, how much load, which limits.
//!
//! A plan is a TOML file (see `docs/plan.md`) whose values flags may override.
//! Overrides are applied to the parsed document before it is typed, so a key
//! set by a flag is validated exactly like one written in the file, and every
//! error names the key it is about. Nothing is started before the plan is valid.
//!
//! - [`sections`]: the typed sections and their defaults.
//! - [`validate`]: the checks across keys.

mod sections;
mod validate;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::faults::spec::PlannedFault;
use crate::report::Budgets;
use crate::sources::reconcile::ReconcilePlan;
pub use sections::*;

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
    /// Where the stored orders are read (default: the example app).
    #[serde(default)]
    pub reconcile: ReconcilePlan,
    /// The shared event store, for the store faults.
    #[serde(default)]
    pub store: StorePlan,
    /// How the hosts named by `ssh` keys are reached.
    #[serde(default)]
    pub ssh: SshPlan,
    /// Faults to inject at chosen steps (`--fault` adds more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<PlannedFault>,
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
    "reconcile",
    "store",
    "ssh",
    "faults",
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

    /// This plan with `overrides` (`dotted.key`, value) applied, typed and
    /// validated again, like flags over a plan file.
    pub fn with_overrides(&self, overrides: &[(String, String)]) -> Result<Plan, PlanError> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let mut doc = self
            .to_toml()
            .parse::<toml::Table>()
            .map_err(|e| PlanError::Syntax {
                path: PathBuf::from("<plan>"),
                message: e.to_string(),
            })?;
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
            reconcile: optional(&mut doc, "reconcile")?,
            store: optional(&mut doc, "store")?,
            ssh: optional(&mut doc, "ssh")?,
            faults: optional(&mut doc, "faults")?,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Failures after the flip that trigger a rollback.
    pub fn watch_failed(&self) -> u64 {
        self.watch.failed.unwrap_or(self.budgets.failed)
    }

    /// The plan as TOML for people to read (`--dry-run`, the demo's
    /// `plan.toml`): URL passwords and header values that may be
    /// credentials masked.
    pub fn to_toml_shown(&self) -> String {
        let mut shown = self.clone();
        if let Some(request) = shown.feeder.request.as_mut() {
            for (name, value) in request.headers.iter_mut() {
                *value = feeder::template::shown_value(name, value).to_string();
            }
        }
        crate::redact::passwords(&shown.to_toml())
    }

    /// The plan as TOML (what `--dry-run` prints and the demo writes).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render plan: {e}\n"))
    }
}

impl Plan {
    /// A command of `origin` (its `start`, `stop` or `kill`) with the
    /// placeholders filled: `{address}`, `{url}`, `{name}`, `{pid}` and
    /// `{ssh}` (the ssh invocation of `[name] ssh`, `[ssh]`'s options).
    pub fn origin_command(&self, origin: &Origin, name: &str, template: &str, pid: &str) -> String {
        let ssh = origin
            .ssh
            .as_deref()
            .map(|t| self.ssh.command(t))
            .unwrap_or_default();
        fill(
            template,
            &[
                ("address", &origin.address),
                ("url", origin.url.as_str()),
                ("name", name),
                ("pid", pid),
                ("ssh", &ssh),
            ],
        )
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
    use std::time::Duration;

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
    fn several_external_feeders_are_listed_once_each() {
        let external = GOOD.replace(
            "target = \"https://shop.example.com/\"",
            "mode = \"external\"\nack_logs = [\"/m1/acks.jsonl\", \"/m2/acks.jsonl\"]\n\
             reports = [\"/m1/r.json\", \"/m2/r.json\"]",
        );
        let p = Plan::from_toml(&external).unwrap();
        assert_eq!(p.feeder.ack_log_list().len(), 2);
        assert_eq!(p.feeder.report_list().len(), 2);
        let both = external.replace("ack_logs", "ack_log = \"/x\"\nack_logs");
        assert!(err(&both).contains("feeder.ack_logs"), "{}", err(&both));
        let twice = external.replace("/m2/acks.jsonl", "/m1/acks.jsonl");
        assert!(err(&twice).contains("listed twice"), "{}", err(&twice));
        let in_process = GOOD.replace("rate = 500", "rate = 500\nack_logs = [\"/a\"]");
        assert!(
            err(&in_process).contains("mode = \"external\""),
            "{}",
            err(&in_process)
        );
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
