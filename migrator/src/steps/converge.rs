//! Step 3, converge: B has caught up with the store before traffic moves.
//!
//! The rule ([`Stability`]): B's applied position has reached the head at
//! least once, and since then stayed within `converge.max_lag` of it, ready
//! (not draining, its store reachable), for `converge.stable_for` without a
//! break. A reading that breaks the rule (or no reading at all) restarts the
//! stable window. What is read is the plan's converge source
//! ([`crate::sources::converge`]); with `wait`, nothing is.

use handover_cli::secs;
use tokio::time::{Duration, Instant};

use super::context::Ctx;
use super::error::StepError;
use super::load::{hold, Load};
use crate::plan::ConvergePlan;
use crate::report::Convergence;
use crate::sources::converge::Converge;
use crate::sources::SourceError;

/// The stability rule, fed one reading at a time.
#[derive(Debug, Clone)]
pub struct Stability {
    max_lag: u64,
    stable_for: Duration,
    lag_max: u64,
    reached_head: bool,
    within_since: Option<Instant>,
}

impl Stability {
    pub fn new(plan: &ConvergePlan) -> Stability {
        Stability {
            max_lag: plan.max_lag,
            stable_for: plan.stable_for,
            lag_max: 0,
            reached_head: false,
            within_since: None,
        }
    }

    /// One reading of B; `Some(lag)` once B counts as converged.
    pub fn observe(
        &mut self,
        applied: u64,
        head: u64,
        draining: bool,
        now: Instant,
    ) -> Option<u64> {
        let lag = head.saturating_sub(applied);
        self.lag_max = self.lag_max.max(lag);
        if applied >= head {
            self.reached_head = true;
        }
        if lag <= self.max_lag && self.reached_head && !draining {
            let since = *self.within_since.get_or_insert(now);
            (now.duration_since(since) >= self.stable_for).then_some(lag)
        } else {
            self.within_since = None;
            None
        }
    }

    /// No reading (B did not answer with its positions): the window restarts.
    pub fn lost_sight(&mut self) {
        self.within_since = None;
    }

    /// The largest lag seen so far.
    pub fn lag_max(&self) -> u64 {
        self.lag_max
    }
}

/// Waits until B is converged by the [`Stability`] rule, or the converge
/// timeout passes (a failure: B stays out of traffic). With `wait`, gives B
/// the planned time and says nothing was measured.
pub async fn run(cx: &mut Ctx, load: &Load, source: &Converge) -> Result<Convergence, StepError> {
    let t0 = Instant::now();
    let source = match source {
        Converge::Wait(d) => {
            let until = std::time::Instant::now() + *d;
            hold(cx, load, until, "converge: nothing to measure, waiting").await?;
            return Ok(Convergence {
                duration_ms: t0.elapsed().as_millis() as u64,
                source: format!("wait {} (nothing measured)", secs(*d)),
                measured: false,
                ..Convergence::default()
            });
        }
        Converge::Measured(s) => s,
    };
    let deadline = t0 + cx.plan.timeouts.converge;
    let mut rule = Stability::new(&cx.plan.converge);
    loop {
        let last = match source.read().await {
            Ok(p) => {
                if let Some(lag) = rule.observe(p.applied, p.head, !p.ready, Instant::now()) {
                    return Ok(Convergence {
                        duration_ms: t0.elapsed().as_millis() as u64,
                        lag_max: rule.lag_max(),
                        lag_at_flip: lag,
                        source: source.describe(),
                        measured: true,
                    });
                }
                let (lag, lag_max, line) = (p.lag(), rule.lag_max(), load.line());
                let ready = if p.ready { "" } else { " (B not ready)" };
                cx.out.progress(|| {
                    format!(
                        "B applied {} head {} lag {lag} (max {lag_max}){ready}; {line}",
                        p.applied, p.head
                    )
                });
                format!("applied {}, head {}{ready}", p.applied, p.head)
            }
            // A name the service does not have will not appear by waiting.
            Err(e @ SourceError::Missing { .. }) => return Err(StepError::Source(e)),
            Err(e) => {
                rule.lost_sight();
                let why = e.to_string();
                cx.out.progress(|| format!("B: {why}"));
                why
            }
        };
        if Instant::now() >= deadline {
            let c = &cx.plan.converge;
            return Err(StepError::Service(format!(
                "not within {} of the head for {} after {} (lag max {}; last: {last})",
                c.max_lag,
                secs(c.stable_for),
                secs(cx.plan.timeouts.converge),
                rule.lag_max(),
            )));
        }
        cx.tick().await?;
    }
}

/// The report line of a converged B.
pub fn detail(plan: &ConvergePlan, c: &Convergence) -> String {
    if !c.measured {
        return format!("B given {}", c.source);
    }
    format!(
        "B within {} of the head for {} (lag max {})",
        plan.max_lag,
        secs(plan.stable_for),
        c.lag_max
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Stability {
        Stability::new(&ConvergePlan {
            max_lag: 10,
            stable_for: Duration::from_secs(1),
            ..ConvergePlan::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn converges_after_a_stable_window_once_the_head_was_reached() {
        let mut r = rule();
        // Within the lag bound but never at the head yet: not converged.
        for _ in 0..20 {
            assert_eq!(r.observe(95, 100, false, Instant::now()), None);
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        assert_eq!(r.observe(100, 100, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(r.observe(105, 110, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(r.observe(108, 110, false, Instant::now()), Some(2));
        assert_eq!(r.lag_max(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lag_spike_restarts_the_window() {
        let mut r = rule();
        assert_eq!(r.observe(100, 100, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(900)).await;
        // Falls behind beyond max_lag: the window starts over.
        assert_eq!(r.observe(100, 150, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(r.observe(150, 150, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(r.observe(150, 150, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(r.observe(150, 150, false, Instant::now()), Some(0));
        assert_eq!(r.lag_max(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn draining_or_silence_restarts_the_window() {
        let mut r = rule();
        assert_eq!(r.observe(100, 100, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(r.observe(100, 100, true, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(r.observe(100, 100, false, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(900)).await;
        r.lost_sight();
        assert_eq!(r.observe(100, 100, false, Instant::now()), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(r.observe(100, 100, false, Instant::now()), Some(0));
    }
}
