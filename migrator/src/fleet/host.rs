//! One host's lifecycle as a pure state machine:
//! host → hold-over (a run) → maintain → verify (retries) → back (a run) →
//! release, and where each failure leaves the service.
//!
//! The rule that keeps the service up: a host only takes its service back
//! after `verify` passed, and a run that did not move the service leaves it
//! where it was serving. So a host that never comes back stays on its
//! hold-over (the hold-over is then kept, never handed to another host);
//! a run that leaves the service's place unknown (a failed flip back: both
//! sides running) stops the fleet for a person.

use serde::Serialize;

use super::schedule::HostEnd;
use crate::report::{MigrationReport, StepOutcome};
use crate::steps::{RunError, RunOutcome};

/// Where a run left the service: on its A side, its B side, or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    A,
    B,
    Unknown,
}

/// What the machine needs to know of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    pub place: Place,
    pub passed: bool,
}

impl RunResult {
    /// Reads a run's result: a refusal changed nothing (the service is on A);
    /// otherwise the flip and rollback steps say where traffic went.
    pub fn of(result: &Result<RunOutcome, RunError>) -> RunResult {
        match result {
            Err(_) => RunResult {
                place: Place::A,
                passed: false,
            },
            Ok(o) => RunResult {
                place: place(&o.report),
                passed: o.report.passed,
            },
        }
    }
}

fn place(report: &MigrationReport) -> Place {
    let outcome = |name: &str| {
        report
            .steps
            .iter()
            .rev()
            .find(|s| s.name == name)
            .map(|s| s.outcome)
    };
    match (outcome("flip"), outcome("rollback")) {
        (_, Some(StepOutcome::Ok)) => Place::A,
        (_, Some(_)) => Place::Unknown,
        (Some(StepOutcome::Ok), None) => Place::B,
        // A failed flip with no rollback left both sides up.
        (Some(_), None) => Place::Unknown,
        (None, None) => Place::A,
    }
}

/// Where a host is in its lifecycle (the report's and the metrics' word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Waiting,
    ToHoldover,
    Maintain,
    Verify,
    Back,
    Release,
    /// Maintained and back on its host.
    Done,
    /// Failed; its service is on the host (it never left, or came back).
    FailedOnHost,
    /// Rolled back: its service stays on the hold-over.
    OnHoldover,
    /// Its service's place is unknown: a person must look.
    Stuck,
    /// Never started: the fleet stopped first.
    Skipped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::ToHoldover => "to_holdover",
            Phase::Maintain => "maintain",
            Phase::Verify => "verify",
            Phase::Back => "back",
            Phase::Release => "release",
            Phase::Done => "done",
            Phase::FailedOnHost => "failed_on_host",
            Phase::OnHoldover => "on_holdover",
            Phase::Stuck => "stuck",
            Phase::Skipped => "skipped",
        }
    }

    /// All phases, for a metric per phase.
    pub const ALL: [Phase; 11] = [
        Phase::Waiting,
        Phase::ToHoldover,
        Phase::Maintain,
        Phase::Verify,
        Phase::Back,
        Phase::Release,
        Phase::Done,
        Phase::FailedOnHost,
        Phase::OnHoldover,
        Phase::Stuck,
        Phase::Skipped,
    ];

    /// The host is moving (between its start and its end).
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Phase::ToHoldover | Phase::Maintain | Phase::Verify | Phase::Back | Phase::Release
        )
    }

    pub fn failed(self) -> bool {
        matches!(self, Phase::FailedOnHost | Phase::OnHoldover | Phase::Stuck)
    }
}

/// What happened to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    OutRun(RunResult),
    /// The maintenance command ended (whatever its exit: a reboot over ssh
    /// often drops the connection; `verify` decides whether the host is fine).
    Maintained,
    Verified(bool),
    BackRun(RunResult),
    Released,
    /// Ctrl-C while the host was emptied: it does not take its service back.
    Interrupted,
}

/// One host's state.
#[derive(Debug, Clone)]
pub struct Machine {
    pub phase: Phase,
    /// Verify attempts made.
    pub attempts: u32,
    retries: u32,
    /// Why it failed, in words for the report.
    pub why: Option<String>,
}

impl Machine {
    pub fn new(retries: u32) -> Machine {
        Machine {
            phase: Phase::Waiting,
            attempts: 0,
            retries: retries.max(1),
            why: None,
        }
    }

    /// Moves on by `event`; an event that does not fit the phase changes nothing.
    pub fn on(&mut self, event: Event) -> Phase {
        use Phase as P;
        let fail = |m: &mut Machine, phase: Phase, why: String| {
            m.why = Some(why);
            phase
        };
        self.phase = match (self.phase, event) {
            (P::Waiting, Event::Start) => P::ToHoldover,
            (P::ToHoldover, Event::OutRun(r)) => match r.place {
                Place::B if r.passed => P::Maintain,
                Place::B => fail(self, P::OnHoldover, "the run to the hold-over moved the service but failed its verdict: left on the hold-over, host not maintained".into()),
                Place::A => fail(self, P::FailedOnHost, "the run to the hold-over did not move the service: still on the host, not maintained".into()),
                Place::Unknown => fail(self, P::Stuck, "the run to the hold-over left both sides running".into()),
            },
            (P::Maintain, Event::Maintained) => P::Verify,
            (P::Verify, Event::Verified(true)) => {
                self.attempts += 1;
                P::Back
            }
            (P::Verify, Event::Verified(false)) => {
                self.attempts += 1;
                if self.attempts < self.retries {
                    P::Verify
                } else {
                    let why = format!(
                        "verify failed {} times: rolled back, the service stays on its hold-over",
                        self.attempts
                    );
                    fail(self, P::OnHoldover, why)
                }
            }
            (P::Back, Event::BackRun(r)) => match r.place {
                Place::B if r.passed => P::Release,
                Place::B => fail(self, P::FailedOnHost, "back on the host, but the run back failed its verdict".into()),
                Place::A => fail(self, P::OnHoldover, "the run back did not move the service: it stays on the hold-over".into()),
                Place::Unknown => fail(self, P::Stuck, "the run back left both sides running".into()),
            },
            (P::Release, Event::Released) => P::Done,
            (P::Maintain | P::Verify, Event::Interrupted) => fail(
                self,
                P::OnHoldover,
                "interrupted before verify passed: the service stays on its hold-over".into(),
            ),
            (phase, _) => phase,
        };
        self.phase
    }

    /// How the host ended, once it has.
    pub fn end(&self) -> Option<HostEnd> {
        match self.phase {
            Phase::Done => Some(HostEnd::Done),
            Phase::FailedOnHost => Some(HostEnd::FailedOnHost),
            Phase::OnHoldover => Some(HostEnd::FailedOnHoldover),
            Phase::Stuck => Some(HostEnd::Stuck),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::{StepRecord, StepTimer};

    const MOVED: RunResult = RunResult {
        place: Place::B,
        passed: true,
    };

    #[test]
    fn a_good_host_goes_all_the_way_round() {
        let mut m = Machine::new(3);
        assert_eq!(m.on(Event::Start), Phase::ToHoldover);
        assert_eq!(m.on(Event::OutRun(MOVED)), Phase::Maintain);
        assert_eq!(m.on(Event::Maintained), Phase::Verify);
        assert_eq!(m.on(Event::Verified(false)), Phase::Verify);
        assert_eq!(m.on(Event::Verified(true)), Phase::Back);
        assert_eq!(m.attempts, 2);
        assert_eq!(m.on(Event::BackRun(MOVED)), Phase::Release);
        assert_eq!(m.on(Event::Released), Phase::Done);
        assert_eq!(m.end(), Some(HostEnd::Done));
        assert!(m.why.is_none());
    }

    #[test]
    fn a_host_that_never_verifies_stays_on_its_holdover() {
        let mut m = Machine::new(3);
        m.on(Event::Start);
        m.on(Event::OutRun(MOVED));
        m.on(Event::Maintained);
        assert_eq!(m.on(Event::Verified(false)), Phase::Verify);
        assert_eq!(m.on(Event::Verified(false)), Phase::Verify);
        assert_eq!(m.on(Event::Verified(false)), Phase::OnHoldover);
        assert_eq!(m.attempts, 3);
        assert_eq!(m.end(), Some(HostEnd::FailedOnHoldover));
        assert!(m.why.as_deref().unwrap().contains("3 times"));
        // Nothing moves it on from there.
        assert_eq!(m.on(Event::Interrupted), Phase::OnHoldover);
        assert_eq!(m.on(Event::BackRun(MOVED)), Phase::OnHoldover);
    }

    #[test]
    fn runs_that_do_not_move_leave_the_service_where_it_served() {
        let mut m = Machine::new(1);
        m.on(Event::Start);
        let stayed = RunResult {
            place: Place::A,
            passed: false,
        };
        assert_eq!(m.on(Event::OutRun(stayed)), Phase::FailedOnHost);
        assert_eq!(m.end(), Some(HostEnd::FailedOnHost));

        let mut m = Machine::new(1);
        m.on(Event::Start);
        m.on(Event::OutRun(MOVED));
        m.on(Event::Maintained);
        m.on(Event::Verified(true));
        assert_eq!(m.on(Event::BackRun(stayed)), Phase::OnHoldover);

        let mut m = Machine::new(1);
        m.on(Event::Start);
        let unknown = RunResult {
            place: Place::Unknown,
            passed: false,
        };
        assert_eq!(m.on(Event::OutRun(unknown)), Phase::Stuck);
        assert_eq!(m.end(), Some(HostEnd::Stuck));
    }

    fn step(name: &str, outcome: StepOutcome) -> StepRecord {
        StepTimer::start(name).finish(outcome, "")
    }

    #[test]
    fn the_place_is_read_from_the_flip_and_rollback_steps() {
        let report = |steps: Vec<StepRecord>| MigrationReport {
            steps,
            ..MigrationReport::default()
        };
        let ok = StepOutcome::Ok;
        let bad = StepOutcome::Failed;
        assert_eq!(place(&report(vec![step("flip", ok)])), Place::B);
        assert_eq!(
            place(&report(vec![step("flip", ok), step("rollback", ok)])),
            Place::A
        );
        assert_eq!(
            place(&report(vec![step("flip", ok), step("rollback", bad)])),
            Place::Unknown
        );
        assert_eq!(place(&report(vec![step("flip", bad)])), Place::Unknown);
        assert_eq!(
            place(&report(vec![step("converge", bad), step("rollback", ok)])),
            Place::A
        );
        assert_eq!(
            RunResult::of(&Err(RunError::Preflight("no".into()))).place,
            Place::A
        );
    }
}
