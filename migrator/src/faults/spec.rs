//! `STEP:KIND[:ARG]`: when a fault fires and what it is. The same text is
//! accepted by `--fault` and by the plan's `[[faults]]` (`at`, `kind`,
//! `arg`), and is how a fault is named in the report.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The steps a fault can be tied to, as the report names them.
pub const STEPS: &[&str] = &[
    "preflight",
    "start_b",
    "converge",
    "flip",
    "drain_a",
    "stop_a",
    "rollback",
    "reconcile",
    "verdict",
];

/// The kinds, for messages.
pub const KINDS: &str = "kill-a, kill-b, stop-store[:DURATION], restart-store[:DURATION], \
     partition-b-store[:DURATION], api-429[:N], api-5xx[:N], api-timeout, b-unhealthy, b-lag, \
     origin-latency:MS[@a|@b], origin-reset[:a|b], origin-blackhole[:a|b], command:CMD";

/// Relative to its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Before,
    /// As the step starts; the step runs under the fault.
    During,
    After,
}

/// Which origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

/// A fault of the switch's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFault {
    /// The next `count` changes answer `status` (retried by the switch).
    Status { status: u16, count: u32 },
    /// Changes hang: the switch times out.
    Timeout,
}

/// A fault of the proxy in front of one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginFault {
    Latency { ms: u64 },
    Reset,
    Blackhole,
}

/// A fault the example app injects into itself (`--fault-injection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppFault {
    /// B's health fails while it otherwise works.
    Unhealthy,
    /// B stops applying events: its `applied` stands while the head grows.
    Lag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Kill(Side),
    /// The store stops; with `down`, it comes back after that long.
    StopStore {
        down: Option<Duration>,
    },
    /// B loses the store (two hosts: its link), back after `down`.
    PartitionBStore {
        down: Option<Duration>,
    },
    Api(ApiFault),
    Origin {
        side: Side,
        fault: OriginFault,
    },
    App(AppFault),
    Command(String),
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub moment: Moment,
    pub step: String,
    pub kind: Kind,
    /// `KIND[:ARG]` as written.
    kind_text: String,
}

impl FaultSpec {
    /// When it fires: `before:flip`, `drain_a`, `after:converge`.
    pub fn at(&self) -> String {
        match self.moment {
            Moment::Before => format!("before:{}", self.step),
            Moment::During => self.step.clone(),
            Moment::After => format!("after:{}", self.step),
        }
    }

    /// The plan's `[[faults]]` entry for this fault.
    pub fn planned(&self) -> PlannedFault {
        let (kind, arg) = match self.kind_text.split_once(':') {
            Some((k, a)) => (k.to_string(), Some(a.to_string())),
            None => (self.kind_text.clone(), None),
        };
        PlannedFault {
            at: self.at(),
            kind,
            arg,
        }
    }

    /// What it is: `kill-a`, `restart-store:2s` (a command's text is not
    /// repeated: it may hold anything).
    pub fn name(&self) -> String {
        match &self.kind {
            Kind::Command(_) => "command".into(),
            _ => self.kind_text.clone(),
        }
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.at(), self.kind_text)
    }
}

fn duration(arg: Option<&str>, what: &str) -> Result<Option<Duration>, String> {
    arg.map(|a| handover_contract::duration::parse(a).map_err(|e| format!("{what}: {e}")))
        .transpose()
}

fn side(arg: Option<&str>, default: Side) -> Result<Side, String> {
    match arg {
        None => Ok(default),
        Some("a") => Ok(Side::A),
        Some("b") => Ok(Side::B),
        Some(other) => Err(format!("{other:?} is not an origin (a or b)")),
    }
}

fn count(arg: Option<&str>) -> Result<u32, String> {
    match arg {
        None => Ok(5),
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| format!("{n:?} is not a count from 1 to 1000")),
    }
}

fn kind(name: &str, arg: Option<&str>) -> Result<Kind, String> {
    let none = |k: Kind| match arg {
        None => Ok(k),
        Some(a) => Err(format!("{name} takes no argument (got {a:?})")),
    };
    match name {
        "kill-a" => none(Kind::Kill(Side::A)),
        "kill-b" => none(Kind::Kill(Side::B)),
        "stop-store" => Ok(Kind::StopStore {
            down: duration(arg, "how long the store stays down")?,
        }),
        "restart-store" => Ok(Kind::StopStore {
            down: Some(
                duration(arg, "how long the store stays down")?.unwrap_or(Duration::from_secs(2)),
            ),
        }),
        "partition-b-store" => Ok(Kind::PartitionBStore {
            down: duration(arg, "how long B is cut off")?,
        }),
        "api-429" => Ok(Kind::Api(ApiFault::Status {
            status: 429,
            count: count(arg)?,
        })),
        "api-5xx" => Ok(Kind::Api(ApiFault::Status {
            status: 503,
            count: count(arg)?,
        })),
        "api-timeout" => none(Kind::Api(ApiFault::Timeout)),
        "b-unhealthy" => none(Kind::App(AppFault::Unhealthy)),
        "b-lag" => none(Kind::App(AppFault::Lag)),
        "origin-latency" => {
            let arg = arg.ok_or("origin-latency needs the added latency: origin-latency:MS")?;
            let (ms, who) = match arg.split_once('@') {
                Some((ms, who)) => (ms, Some(who)),
                None => (arg, None),
            };
            let ms = ms
                .trim_end_matches("ms")
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 600_000)
                .ok_or_else(|| format!("{ms:?} is not a latency in ms"))?;
            Ok(Kind::Origin {
                side: side(who, Side::B)?,
                fault: OriginFault::Latency { ms },
            })
        }
        "origin-reset" => Ok(Kind::Origin {
            side: side(arg, Side::B)?,
            fault: OriginFault::Reset,
        }),
        "origin-blackhole" => Ok(Kind::Origin {
            side: side(arg, Side::B)?,
            fault: OriginFault::Blackhole,
        }),
        "command" => match arg {
            Some(c) if !c.trim().is_empty() => Ok(Kind::Command(c.to_string())),
            _ => Err("command needs the command: command:CMD".into()),
        },
        other => Err(format!("unknown fault kind {other:?} (one of: {KINDS})")),
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    /// `[before:|after:]STEP:KIND[:ARG]`; a command's ARG may hold `:`.
    fn from_str(s: &str) -> Result<FaultSpec, String> {
        let s = s.trim();
        let (moment, rest) = if let Some(r) = s.strip_prefix("before:") {
            (Moment::Before, r)
        } else if let Some(r) = s.strip_prefix("after:") {
            (Moment::After, r)
        } else {
            (Moment::During, s)
        };
        let (step, rest) = rest
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected STEP:KIND[:ARG], e.g. drain_a:kill-a"))?;
        if !STEPS.contains(&step) {
            return Err(format!(
                "{s:?}: {step:?} is not a step (one of: {})",
                STEPS.join(", ")
            ));
        }
        let (name, arg) = match rest.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (rest, None),
        };
        let kind = kind(name, arg).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(FaultSpec {
            moment,
            step: step.to_string(),
            kind,
            kind_text: rest.to_string(),
        })
    }
}

/// `[[faults]]` in the plan: `at = "drain_a"`, `kind = "kill-a"`, `arg = "…"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedFault {
    /// `STEP`, `before:STEP` or `after:STEP`.
    pub at: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
}

impl PlannedFault {
    pub fn spec(&self) -> Result<FaultSpec, String> {
        let text = match &self.arg {
            Some(a) => format!("{}:{}:{a}", self.at, self.kind),
            None => format!("{}:{}", self.at, self.kind),
        };
        text.parse()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> FaultSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_kind_parses_with_its_moment() {
        let f = parse("drain_a:kill-a");
        assert_eq!(
            (f.moment, f.step.as_str(), &f.kind),
            (Moment::During, "drain_a", &Kind::Kill(Side::A))
        );
        assert_eq!(
            parse("before:flip:api-429:5").kind,
            Kind::Api(ApiFault::Status {
                status: 429,
                count: 5
            })
        );
        assert_eq!(
            parse("after:flip:api-5xx").kind,
            Kind::Api(ApiFault::Status {
                status: 503,
                count: 5
            })
        );
        assert_eq!(
            parse("converge:restart-store:1500ms").kind,
            Kind::StopStore {
                down: Some(Duration::from_millis(1500))
            }
        );
        assert_eq!(
            parse("converge:restart-store").kind,
            Kind::StopStore {
                down: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            parse("converge:stop-store").kind,
            Kind::StopStore { down: None }
        );
        assert_eq!(
            parse("after:flip:origin-latency:300@a").kind,
            Kind::Origin {
                side: Side::A,
                fault: OriginFault::Latency { ms: 300 }
            }
        );
        assert_eq!(
            parse("drain_a:origin-reset").kind,
            Kind::Origin {
                side: Side::B,
                fault: OriginFault::Reset
            }
        );
        assert_eq!(
            parse("start_b:b-unhealthy").kind,
            Kind::App(AppFault::Unhealthy)
        );
        assert_eq!(
            parse("drain_a:command:echo a:b").kind,
            Kind::Command("echo a:b".into())
        );
        assert_eq!(parse("after:flip:kill-b").at(), "after:flip");
        assert_eq!(
            parse("before:flip:api-429:5").to_string(),
            "before:flip:api-429:5"
        );
        assert_eq!(parse("drain_a:command:secret stuff").name(), "command");
    }

    #[test]
    fn bad_faults_say_what_is_wrong() {
        for (text, needle) in [
            ("kill-a", "expected STEP:KIND"),
            ("drain:kill-a", "not a step"),
            ("drain_a:kill-c", "unknown fault kind"),
            ("drain_a:kill-a:now", "takes no argument"),
            ("flip:api-429:0", "not a count"),
            ("flip:api-429:many", "not a count"),
            ("converge:restart-store:soon", "how long"),
            ("flip:origin-latency", "needs the added latency"),
            ("flip:origin-latency:300@c", "not an origin"),
            ("flip:command:", "needs the command"),
        ] {
            let e = text.parse::<FaultSpec>().unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn a_planned_fault_reads_like_the_flag() {
        let p = PlannedFault {
            at: "before:flip".into(),
            kind: "api-429".into(),
            arg: Some("3".into()),
        };
        assert_eq!(p.spec().unwrap(), parse("before:flip:api-429:3"));
        assert_eq!(parse("before:flip:api-429:3").planned(), p);
        let c = parse("drain_a:command:echo a:b").planned();
        assert_eq!(c.spec().unwrap(), parse("drain_a:command:echo a:b"));
    }
}
