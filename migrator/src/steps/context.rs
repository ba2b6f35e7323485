//! What every step may use: the plan, the way to read an origin's health,
//! the printer, and Ctrl-C.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::StepError;
use super::progress::Printer;
use crate::health::HealthClient;
use crate::plan::Plan;

/// How often the waiting steps poll.
pub const POLL: Duration = Duration::from_millis(100);

/// The context every step runs in.
pub struct Ctx {
    pub plan: Plan,
    pub health: HealthClient,
    pub out: Printer,
    pub cancel: CancellationToken,
}

impl Ctx {
    /// Sleeps one poll interval; `Err` when interrupted.
    pub async fn tick(&self) -> Result<(), StepError> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(StepError::Interrupted),
            _ = tokio::time::sleep(POLL) => Ok(()),
        }
    }
}
