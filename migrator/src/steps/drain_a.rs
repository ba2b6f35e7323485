//! Step 5, drain A: after the flip, wait until A serves nothing more, while
//! watching that B holds up.
//!
//! Two rules, fed one reading at a time:
//! - [`QuietWindow`]: A is drained once what the plan's drain source reads
//!   ([`crate::sources::drain`]: by default `requests_total` of A's health
//!   document) has not moved for `drain.quiet` and nothing is in flight.
//! - [`Watch`]: B is failing once its health has been bad for
//!   `watch.unhealthy_for` without a break, or more requests failed after the
//!   flip than the watch budget allows; then traffic goes back to A.

use handover_cli::secs;
use tokio::time::{Duration, Instant};

use super::context::Ctx;
use super::error::StepError;
use super::load::Load;
use crate::sources::drain::{Drain, Usage};
use crate::sources::SourceError;

/// How the drain ended (a failing B is an `Err` instead: roll back).
#[derive(Debug, Clone, PartialEq)]
pub enum Drained {
    /// A was quiet for the window.
    Quiet {
        quiet_for: Duration,
        /// What stood still (`requests_total`, `replies from a`, a metric).
        counter: String,
        value: f64,
    },
    /// The plan gave A a fixed time, with nothing measured.
    Waited(Duration),
    /// A stopped answering: nothing more can reach it.
    Gone(String),
    /// A still served when the drain timeout passed; stopping it gracefully
    /// hands its last connections to B.
    TimedOut(Duration),
}

impl Drained {
    pub fn detail(&self) -> String {
        match self {
            Drained::Quiet {
                quiet_for,
                counter,
                value,
            } => format!(
                "A quiet for {} ({counter} {value}, in_flight 0)",
                secs(*quiet_for)
            ),
            Drained::Gone(why) => format!("A stopped answering ({why})"),
            Drained::Waited(d) => format!("A given {} (drain.kind = wait: nothing measured)", secs(*d)),
            Drained::TimedOut(after) => format!(
                "A still served requests after {}; stopping it gracefully hands its last connections to B",
                secs(*after)
            ),
        }
    }
}

/// A's request counter standing still for a window.
#[derive(Debug, Clone)]
pub struct QuietWindow {
    quiet: Duration,
    last_total: Option<f64>,
    moved_at: Instant,
}

impl QuietWindow {
    pub fn new(quiet: Duration, now: Instant) -> QuietWindow {
        QuietWindow {
            quiet,
            last_total: None,
            moved_at: now,
        }
    }

    /// One reading of A; returns how long it has been quiet and whether that
    /// counts as drained.
    pub fn observe(
        &mut self,
        requests_total: f64,
        in_flight: u64,
        now: Instant,
    ) -> (Duration, bool) {
        if self.last_total != Some(requests_total) {
            self.last_total = Some(requests_total);
            self.moved_at = now;
        }
        let quiet_for = now.duration_since(self.moved_at);
        (quiet_for, quiet_for >= self.quiet && in_flight == 0)
    }
}

/// The post-flip watch on B.
#[derive(Debug, Clone)]
pub struct Watch {
    unhealthy_for: Duration,
    allowed_failures: u64,
    failed_at_flip: u64,
    bad_since: Option<Instant>,
}

impl Watch {
    /// `failed_at_flip`: the load's failures before the flip (not B's doing).
    pub fn new(unhealthy_for: Duration, allowed_failures: u64, failed_at_flip: u64) -> Watch {
        Watch {
            unhealthy_for,
            allowed_failures,
            failed_at_flip,
            bad_since: None,
        }
    }

    /// One health reading of B; `Err(how long)` once it has been bad too long.
    pub fn health(&mut self, healthy: bool, now: Instant) -> Result<(), Duration> {
        if healthy {
            self.bad_since = None;
            return Ok(());
        }
        let bad_for = now.duration_since(*self.bad_since.get_or_insert(now));
        if bad_for >= self.unhealthy_for {
            Err(bad_for)
        } else {
            Ok(())
        }
    }

    /// The load's failures so far; `Err(failed after the flip)` beyond the budget.
    pub fn failures(&self, failed_total: u64) -> Result<(), u64> {
        let failed = failed_total.saturating_sub(self.failed_at_flip);
        if failed > self.allowed_failures {
            Err(failed)
        } else {
            Ok(())
        }
    }
}

/// Waits until A is quiet by `source`, watching B and the load; `Err`
/// means roll back.
pub async fn run(
    cx: &mut Ctx,
    load: &Load,
    failed_at_flip: u64,
    source: &Drain,
) -> Result<Drained, StepError> {
    let t0 = Instant::now();
    let deadline = t0 + cx.plan.timeouts.drain;
    let b_health = cx.plan.b.health();
    let mut window = match source {
        Drain::Wait(d) => QuietWindow::new(*d, t0),
        Drain::Measured(_) => QuietWindow::new(cx.plan.drain.quiet, t0),
    };
    let mut watch = Watch::new(
        cx.plan.watch.unhealthy_for,
        cx.plan.watch_failed(),
        failed_at_flip,
    );
    let mut last_error: Option<SourceError>;
    loop {
        let b = cx.health.probe(&b_health).await;
        if let Err(bad_for) = watch.health(b.is_healthy(), Instant::now()) {
            return Err(StepError::Watch(format!(
                "B failing after the flip for {}: {}",
                secs(bad_for),
                b.describe()
            )));
        }
        let live = load.live();
        if let Some(l) = &live {
            if let Err(failed) = watch.failures(l.rejected + l.indeterminate) {
                return Err(StepError::Watch(format!(
                    "{failed} requests failed after the flip (watch budget {})",
                    cx.plan.watch_failed()
                )));
            }
        }
        let usage = match source {
            // Nothing to read: the window only runs out.
            Drain::Wait(_) => Ok(Usage::Counting {
                total: 0.0,
                in_flight: 0,
            }),
            Drain::Measured(s) => s.read(live.as_ref()).await,
        };
        match usage {
            Ok(Usage::Gone(why)) => return Ok(Drained::Gone(why)),
            Ok(Usage::Counting { total, in_flight }) => {
                last_error = None;
                let (quiet_for, drained) = window.observe(total, in_flight, Instant::now());
                if drained {
                    return Ok(match source {
                        Drain::Wait(d) => Drained::Waited(*d),
                        Drain::Measured(s) => Drained::Quiet {
                            quiet_for,
                            counter: s.counter(),
                            value: total,
                        },
                    });
                }
                let line = load.line();
                let counter = match source {
                    Drain::Measured(s) => s.counter(),
                    Drain::Wait(_) => "waiting".into(),
                };
                cx.out.progress(|| {
                    format!(
                        "A {counter} {total} in_flight {in_flight} quiet {}; {line}",
                        secs(quiet_for)
                    )
                });
            }
            // A name the service does not have will not appear by waiting.
            Err(e @ SourceError::Missing { .. }) => return Err(StepError::Source(e)),
            Err(e) => {
                let why = e.to_string();
                cx.out.progress(|| format!("A: {why}"));
                last_error = Some(e);
            }
        }
        if Instant::now() >= deadline {
            return match last_error {
                // The source never came back: A's use is unknown.
                Some(e) => Err(StepError::Source(e)),
                None => Ok(Drained::TimedOut(cx.plan.timeouts.drain)),
            };
        }
        cx.tick().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quiet_once_the_counter_stands_still_for_the_window() {
        let mut w = QuietWindow::new(Duration::from_secs(2), Instant::now());
        let mut total = 0.0;
        for _ in 0..30 {
            total += 7.0;
            let (quiet, done) = w.observe(total, 3, Instant::now());
            assert_eq!((quiet, done), (Duration::ZERO, false));
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        // 100 ms since the last move already; 1.9 s in all is not enough.
        tokio::time::advance(Duration::from_millis(1800)).await;
        assert_eq!(
            w.observe(total, 0, Instant::now()),
            (Duration::from_millis(1900), false)
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(
            w.observe(total, 0, Instant::now()),
            (Duration::from_secs(2), true)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_a_from_counting_as_drained() {
        let mut w = QuietWindow::new(Duration::from_secs(2), Instant::now());
        w.observe(10.0, 1, Instant::now());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            w.observe(10.0, 1, Instant::now()),
            (Duration::from_secs(5), false)
        );
        assert!(w.observe(10.0, 0, Instant::now()).1);
        // One more request restarts the window.
        assert_eq!(w.observe(11.0, 0, Instant::now()), (Duration::ZERO, false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_counter_that_goes_down_is_movement_too() {
        let mut w = QuietWindow::new(Duration::from_secs(1), Instant::now());
        w.observe(500.0, 0, Instant::now());
        tokio::time::advance(Duration::from_millis(900)).await;
        // A restarted: its counter starts again from zero.
        assert_eq!(w.observe(3.0, 0, Instant::now()), (Duration::ZERO, false));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(w.observe(3.0, 0, Instant::now()).1);
    }

    #[tokio::test(start_paused = true)]
    async fn b_is_failing_only_after_a_continuous_bad_spell() {
        let mut watch = Watch::new(Duration::from_secs(1), 0, 0);
        assert_eq!(watch.health(false, Instant::now()), Ok(()));
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(watch.health(false, Instant::now()), Ok(()));
        // One good reading forgives the spell.
        assert_eq!(watch.health(true, Instant::now()), Ok(()));
        assert_eq!(watch.health(false, Instant::now()), Ok(()));
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!(
            watch.health(false, Instant::now()),
            Err(Duration::from_secs(1))
        );
    }

    #[test]
    fn only_failures_after_the_flip_count_against_the_budget() {
        let watch = Watch::new(Duration::from_secs(1), 3, 10);
        assert_eq!(watch.failures(10), Ok(()));
        assert_eq!(watch.failures(13), Ok(()));
        assert_eq!(watch.failures(14), Err(4));
    }
}
