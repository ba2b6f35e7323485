//! Faults an instance injects into itself on request, for rehearsals of a
//! cutover and for tests, never in production: only a process started with
//! `--fault-injection` has them (`/admin/faults`, see [`crate::admin`]).
//!
//! They are what the migrator's nemesis needs from the service itself: B's
//! health failing while everything else works (`{"health": "fail"}`), and B
//! no longer applying the log while the store's head grows
//! (`{"apply": "pause"}`), so the steps that wait on B meet an unhealthy or
//! lagging B at the moment the nemesis chooses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::follower::ApplyGate;

/// The reason `/health` gives (as `checks.fault`) while its fault is armed.
pub const HEALTH_FAULT_REASON: &str = "fault injected";

/// `health`: `fail` makes `/health` answer 503 `healthy: false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthFault {
    Ok,
    Fail,
}

/// `apply`: `pause` stops the follower applying the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyFault {
    Resume,
    Pause,
}

/// What is armed now: what `GET /admin/faults` shows and every change answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Armed {
    pub health: HealthFault,
    pub apply: ApplyFault,
}

/// One `POST /admin/faults` body: the keys it names change, the others stay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultChange {
    pub health: Option<HealthFault>,
    pub apply: Option<ApplyFault>,
}

/// Why a fault request was refused; nothing was changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    #[error("body is not JSON: {0}")]
    Malformed(String),
    #[error("body must be a JSON object such as {{\"health\": \"fail\"}}")]
    NotAnObject,
    #[error("nothing to change: give \"health\" (\"fail\" or \"ok\") and/or \"apply\" (\"pause\" or \"resume\")")]
    Empty,
    #[error("unknown key {0:?}: the keys are \"health\" and \"apply\"")]
    UnknownKey(String),
    #[error("\"{key}\" must be {allowed}, not {got}")]
    BadValue {
        key: &'static str,
        allowed: &'static str,
        got: String,
    },
}

impl FaultChange {
    /// Parses a request body; an error names the key at fault and what it takes.
    pub fn parse(body: &[u8]) -> Result<Self, FaultError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| FaultError::Malformed(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(FaultError::NotAnObject);
        };
        if let Some(key) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "health" | "apply"))
        {
            return Err(FaultError::UnknownKey(key.clone()));
        }
        let change = FaultChange {
            health: field(&map, "health", "\"fail\" or \"ok\"")?,
            apply: field(&map, "apply", "\"pause\" or \"resume\"")?,
        };
        if change == FaultChange::default() {
            return Err(FaultError::Empty);
        }
        Ok(change)
    }
}

/// The value at `key`, if present, as one of its words.
fn field<T: serde::de::DeserializeOwned>(
    map: &Map<String, Value>,
    key: &'static str,
    allowed: &'static str,
) -> Result<Option<T>, FaultError> {
    map.get(key)
        .map(|v| {
            serde_json::from_value(v.clone()).map_err(|_| FaultError::BadValue {
                key,
                allowed,
                got: v.to_string(),
            })
        })
        .transpose()
}

/// The faults of one instance.
pub struct Faults {
    health_failing: AtomicBool,
    apply: Arc<ApplyGate>,
}

impl Faults {
    /// Faults that pause the follower behind `apply`; nothing armed.
    pub fn new(apply: Arc<ApplyGate>) -> Self {
        Faults {
            health_failing: AtomicBool::new(false),
            apply,
        }
    }

    /// Arms or disarms what `change` names; returns what is armed now.
    pub fn change(&self, change: FaultChange) -> Armed {
        if let Some(h) = change.health {
            self.health_failing
                .store(h == HealthFault::Fail, Ordering::SeqCst);
        }
        match change.apply {
            Some(ApplyFault::Pause) => self.apply.pause(),
            Some(ApplyFault::Resume) => self.apply.resume(),
            None => {}
        }
        let armed = self.armed();
        tracing::warn!(health = ?armed.health, apply = ?armed.apply, "injected faults changed");
        armed
    }

    /// Disarms everything.
    pub fn clear(&self) -> Armed {
        self.change(FaultChange {
            health: Some(HealthFault::Ok),
            apply: Some(ApplyFault::Resume),
        })
    }

    pub fn armed(&self) -> Armed {
        Armed {
            health: if self.health_failing() {
                HealthFault::Fail
            } else {
                HealthFault::Ok
            },
            apply: if self.apply.is_paused() {
                ApplyFault::Pause
            } else {
                ApplyFault::Resume
            },
        }
    }

    /// True while `/health` must fail.
    pub fn health_failing(&self) -> bool {
        self.health_failing.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_key_and_both() {
        let p = |s: &str| FaultChange::parse(s.as_bytes());
        assert_eq!(
            p(r#"{"health":"fail"}"#),
            Ok(FaultChange {
                health: Some(HealthFault::Fail),
                apply: None
            })
        );
        assert_eq!(
            p(r#"{"apply":"pause","health":"ok"}"#),
            Ok(FaultChange {
                health: Some(HealthFault::Ok),
                apply: Some(ApplyFault::Pause)
            })
        );
    }

    #[test]
    fn bad_bodies_name_the_key() {
        let p = |s: &str| FaultChange::parse(s.as_bytes()).map_err(|e| e.to_string());
        let bad_health = p(r#"{"health":"sick"}"#).expect_err("sick");
        assert_eq!(
            bad_health,
            "\"health\" must be \"fail\" or \"ok\", not \"sick\""
        );
        let bad_apply = p(r#"{"apply":1}"#).expect_err("1");
        assert_eq!(
            bad_apply,
            "\"apply\" must be \"pause\" or \"resume\", not 1"
        );
        assert!(p(r#"{"helth":"fail"}"#)
            .expect_err("typo")
            .contains("\"helth\""));
        assert!(p("{}").expect_err("empty").contains("nothing to change"));
        assert!(p("[]").expect_err("array").contains("JSON object"));
        assert!(p("{")
            .expect_err("malformed")
            .starts_with("body is not JSON"));
    }

    #[test]
    fn arms_and_clears() {
        let gate = Arc::new(ApplyGate::default());
        let f = Faults::new(gate.clone());
        let none = Armed {
            health: HealthFault::Ok,
            apply: ApplyFault::Resume,
        };
        assert_eq!(f.armed(), none);
        let armed = f.change(FaultChange {
            health: Some(HealthFault::Fail),
            apply: Some(ApplyFault::Pause),
        });
        assert_eq!(armed.health, HealthFault::Fail);
        assert!(f.health_failing() && gate.is_paused());
        // A change leaves the keys it does not name alone.
        let armed = f.change(FaultChange {
            health: Some(HealthFault::Ok),
            apply: None,
        });
        assert_eq!(armed.apply, ApplyFault::Pause);
        assert_eq!(f.clear(), none);
        assert!(!gate.is_paused());
    }
}
