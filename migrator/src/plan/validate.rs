//! The checks serde cannot express: values that parse but make no sense
//! together (B at A's address, a quiet window longer than its timeout).
//! Every error names its key.

use url::Url;

use super::{ConvergeKind, DrainKind, FeederMode, Plan, PlanError, SwitchPlan};
use crate::faults::{FaultSpec, Kind, Side};

impl Plan {
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
            for (field, cmd) in [("start", &o.start), ("stop", &o.stop), ("kill", &o.kill)] {
                if cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
                    return Err(PlanError::key(
                        format!("{name}.{field}"),
                        "must not be empty (leave it out instead)",
                    ));
                }
                if cmd.as_deref().is_some_and(|c| c.contains("{ssh}")) && o.ssh.is_none() {
                    return Err(PlanError::key(
                        format!("{name}.{field}"),
                        format!("uses {{ssh}} but {name}.ssh (user@host) is not set"),
                    ));
                }
            }
            if let Some(t) = &o.ssh {
                check_ssh_target(&format!("{name}.ssh"), t)?;
            }
        }
        if let Some(t) = &self.store.ssh {
            check_ssh_target("store.ssh", t)?;
        }
        if let Some(i) = &self.ssh.identity {
            if !i.is_file() {
                return Err(PlanError::key(
                    "ssh.identity",
                    format!("{} is not a readable file", i.display()),
                ));
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
                if f.connections == Some(0) {
                    return Err(PlanError::key("feeder.connections", "must be at least 1"));
                }
                if f.timeout.is_zero() {
                    return Err(PlanError::key("feeder.timeout", "must be more than 0"));
                }
                if !f.ack_logs.is_empty() || !f.reports.is_empty() {
                    let key = if f.ack_logs.is_empty() {
                        "feeder.reports"
                    } else {
                        "feeder.ack_logs"
                    };
                    return Err(PlanError::key(
                        key,
                        "only with mode = \"external\" (several feeders run by you)",
                    ));
                }
            }
            FeederMode::External => {
                match (&f.ack_log, f.ack_logs.is_empty()) {
                    (None, true) => {
                        return Err(PlanError::key(
                            "feeder.ack_log",
                            "missing: the external feeder's ack log (or feeder.ack_logs)",
                        ))
                    }
                    (Some(_), false) => {
                        return Err(PlanError::key(
                            "feeder.ack_logs",
                            "give feeder.ack_log or feeder.ack_logs, not both",
                        ))
                    }
                    _ => {}
                }
                if f.report.is_some() && !f.reports.is_empty() {
                    return Err(PlanError::key(
                        "feeder.reports",
                        "give feeder.report or feeder.reports, not both",
                    ));
                }
                let logs = f.ack_log_list();
                if let Some(dup) = logs
                    .iter()
                    .enumerate()
                    .find(|(i, p)| logs[..*i].contains(p))
                {
                    return Err(PlanError::key(
                        "feeder.ack_logs",
                        format!("{} is listed twice", dup.1.display()),
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
        for (name, o) in [("a", &self.a), ("b", &self.b)] {
            if o.instance.as_deref().is_some_and(|i| i.trim().is_empty()) {
                return Err(PlanError::key(
                    format!("{name}.instance"),
                    "must not be empty (leave it out to learn it)",
                ));
            }
        }
        self.check_sources()
    }

    /// Each source's keys: those its kind needs are there and make sense,
    /// none that belong to another kind (a key the kind ignores would be a
    /// silent surprise).
    fn check_sources(&self) -> Result<(), PlanError> {
        let c = &self.converge;
        let kind = format!("converge.kind = \"{}\"", kind_name(&c.kind));
        unused(
            &kind,
            &[
                (
                    "converge.applied",
                    c.applied.is_some(),
                    matches!(c.kind, ConvergeKind::Prometheus | ConvergeKind::HttpJson),
                ),
                (
                    "converge.head",
                    c.head.is_some(),
                    matches!(c.kind, ConvergeKind::Prometheus | ConvergeKind::HttpJson),
                ),
                (
                    "converge.command",
                    c.command.is_some(),
                    c.kind == ConvergeKind::Command,
                ),
                (
                    "converge.for",
                    c.wait_for.is_some(),
                    c.kind == ConvergeKind::Wait,
                ),
            ],
        )?;
        if c.command.as_deref().is_some_and(|x| x.trim().is_empty()) {
            return Err(PlanError::key("converge.command", "must not be empty"));
        }
        crate::sources::converge::from_plan(self).map_err(|e| keyed(&e))?;
        let d = &self.drain;
        let kind = format!("drain.kind = \"{}\"", kind_name(&d.kind));
        let prom = d.kind == DrainKind::Prometheus;
        unused(
            &kind,
            &[
                ("drain.url", d.url.is_some(), prom),
                ("drain.metric", d.metric.is_some(), prom),
                ("drain.labels", !d.labels.is_empty(), prom),
                (
                    "drain.command",
                    d.command.is_some(),
                    d.kind == DrainKind::Command,
                ),
                ("drain.for", d.wait_for.is_some(), d.kind == DrainKind::Wait),
            ],
        )?;
        if d.command.as_deref().is_some_and(|x| x.trim().is_empty()) {
            return Err(PlanError::key("drain.command", "must not be empty"));
        }
        if d.kind == DrainKind::Replies && self.feeder.mode != FeederMode::InProcess {
            return Err(PlanError::key(
                "drain.kind",
                "\"replies\" needs the feeder in process (feeder.mode = \"in_process\")",
            ));
        }
        if let Some(w) = d.wait_for {
            if w >= self.timeouts.drain {
                return Err(PlanError::key(
                    "drain.for",
                    "must be shorter than timeouts.drain",
                ));
            }
        }
        // A's instance may still be learned before the flip: any name will do here.
        crate::sources::drain::from_plan(self, Some("A")).map_err(|e| keyed(&e))?;
        self.reconcile
            .validate()
            .map_err(|(key, message)| PlanError::key(key, message))?;
        for (i, planned) in self.faults.iter().enumerate() {
            let key = format!("faults[{i}]");
            let spec = planned.spec().map_err(|e| PlanError::key(&key, e))?;
            self.check_fault(&spec, &key)?;
        }
        if let Some(request) = &self.feeder.request {
            if self.feeder.mode == FeederMode::External {
                return Err(PlanError::key(
                    "feeder.request",
                    "is for the feeder in process; give an external feeder its --request file",
                ));
            }
            request
                .validate()
                .map_err(|e| PlanError::key(e.field.key(), e.reason))?;
        }
        Ok(())
    }
}

impl Plan {
    /// Whether this plan can inject `spec` (a kill needs a process or a
    /// command, a store fault a way to stop the store, an API or proxy
    /// fault the local edge); `key` names where the fault was given.
    pub fn check_fault(&self, spec: &FaultSpec, key: &str) -> Result<(), PlanError> {
        let need = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(PlanError::key(key, format!("{spec}: {what}")))
            }
        };
        match &spec.kind {
            Kind::Kill(Side::A) => need(
                self.a.kill.is_some(),
                "needs a.kill (how to kill A at once: the migrator did not start it)",
            ),
            Kind::Kill(Side::B) => Ok(()),
            Kind::StopStore { down } => need(
                self.store.sqlite_path().is_some()
                    || (self.store.stop.is_some()
                        && (down.is_none() || self.store.start.is_some())),
                "needs [store] url = \"sqlite:PATH\", or [store] stop (and start, to come back)",
            ),
            Kind::PartitionBStore { down } => need(
                self.store.partition_b.is_some() && (down.is_none() || self.store.heal_b.is_some()),
                "needs [store] partition_b (and heal_b, to come back)",
            ),
            Kind::Api(_) | Kind::Origin { .. } => need(
                matches!(self.switch, SwitchPlan::Cloudflare(_)),
                "needs the local edge as the switch (switch.kind = \"cloudflare\" with its api_base)",
            ),
            Kind::App(_) | Kind::Command(_) => Ok(()),
        }
    }
}

/// A kind's name as the plan writes it.
fn kind_name<T: serde::Serialize>(kind: &T) -> String {
    toml::Value::try_from(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Refuses a key given for a kind that does not read it.
fn unused(kind: &str, keys: &[(&str, bool, bool)]) -> Result<(), PlanError> {
    match keys.iter().find(|(_, given, used)| *given && !*used) {
        Some((key, _, _)) => Err(PlanError::key(*key, format!("is not read with {kind}"))),
        None => Ok(()),
    }
}

/// `"converge.applied.metric: missing"` as the error naming that key.
fn keyed(message: &str) -> PlanError {
    match message.split_once(": ") {
        Some((key, rest)) if !key.contains(' ') => PlanError::key(key, rest),
        _ => PlanError::key("plan", message),
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

/// `user@host` or `host`: no spaces, no option-looking start (ssh would
/// take `-oProxyCommand=…` as an option).
fn check_ssh_target(key: &str, t: &str) -> Result<(), PlanError> {
    let host = t.rsplit('@').next().unwrap_or_default();
    if t.starts_with('-')
        || host.is_empty()
        || t.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(PlanError::key(
            key,
            format!("{t:?} is not an ssh target (expected user@host)"),
        ));
    }
    Ok(())
}
