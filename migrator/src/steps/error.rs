//! Why a step failed, by who has to act. The sequence in [`super`] decides
//! what happens next (roll back before or after the flip, or go on and fail
//! the verdict); the message is what the report's step `detail` says.

use crate::process::ProcessError;
use crate::sources::SourceError;
use crate::switch::SwitchError;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The operator pressed Ctrl-C (or sent SIGTERM): stop safely.
    #[error("interrupted (Ctrl-C)")]
    Interrupted,
    /// A command of the plan (start, stop) failed: the plan's author must act.
    #[error(transparent)]
    Command(#[from] ProcessError),
    /// The traffic switch refused or failed: whoever owns the switch must act.
    #[error(transparent)]
    Switch(#[from] SwitchError),
    /// The service did not reach the state the step waits for within its
    /// timeout (B not healthy, not converged, an origin that will not stop):
    /// whoever runs the service must look at it.
    #[error("{0}")]
    Service(String),
    /// A source the plan chose could not be read in a way waiting will not
    /// mend (a metric or pointer that is not there): the plan's author.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// B failed after the flip beyond the watch budget: traffic goes back to A.
    #[error("{0}")]
    Watch(String),
    /// This machine cannot carry the planned load (a limit far too low):
    /// its operator must raise it.
    #[error("host: {0}")]
    Host(String),
    /// The plan leaves the step nothing to act on (no stop command and no
    /// process to signal): the plan's author must act.
    #[error("{0}")]
    Plan(String),
}

/// Errors that stop the run before anything was started or changed (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("preflight: {0}")]
    Preflight(String),
}
