//! The checks serde cannot express: values that parse but make no sense
//! together (B at A's address, a quiet window longer than its timeout).
//! Every error names its key.

use url::Url;

use super::{FeederMode, Plan, PlanError, SwitchPlan};

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
