//! The traffic switch: where requests for the service go, and the one change
//! that moves them from A to B.
//!
//! One trait, one implementation per way of moving traffic: [`cloudflare`]
//! (a proxied DNS record through the v4 API, also the local edge) and
//! [`command`] (the user's own tooling). A flip is a compare-and-set: it
//! refuses when traffic no longer goes where the migrator thinks it does.

pub mod cloudflare;
pub mod command;

use futures::future::BoxFuture;

use crate::plan::{Plan, SwitchPlan};

/// What preflight learns about the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchState {
    /// The address traffic goes to now.
    pub current: String,
    /// One line for the printed plan, e.g. `A shop.example.com (proxied, ttl auto) in zone example.com`.
    pub detail: String,
}

/// What a flip did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlipReport {
    /// API calls or command runs, retries included.
    pub attempts: u32,
    /// One entry per retried failure (`429, waited 1s`).
    pub retries: Vec<String>,
}

/// Why the switch could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// Configuration the user must fix (missing token, no such zone or record).
    #[error("{0}")]
    Config(String),
    /// The credentials were refused.
    #[error("the API token was refused: {0}")]
    Auth(String),
    /// The compare in compare-and-set failed: someone else moved traffic.
    #[error("refused: traffic goes to {found}, expected {expected}")]
    Refused { expected: String, found: String },
    /// The change was accepted but reading it back shows something else.
    #[error("the change did not stick: read back {found}, expected {expected}")]
    NotApplied { expected: String, found: String },
    /// The API kept failing (after retries) or answered nonsense.
    #[error("{0}")]
    Api(String),
    /// The user's command failed.
    #[error("{0}")]
    Command(String),
}

/// A way of moving traffic between origins.
pub trait TrafficSwitch: Send + Sync {
    /// One line saying what is switched, for the printed plan.
    fn describe(&self) -> String;

    /// Preflight: credentials work, the target exists and is in a shape the
    /// flip can change; returns where traffic goes now.
    fn check(&self) -> BoxFuture<'_, Result<SwitchState, SwitchError>>;

    /// Where traffic goes now.
    fn current(&self) -> BoxFuture<'_, Result<String, SwitchError>>;

    /// Compare-and-set: if traffic goes to `from`, send it to `to`, then read it
    /// back. Refuses (changing nothing) if it goes anywhere else.
    fn flip<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<FlipReport, SwitchError>>;
}

/// Builds the switch the plan asks for. The Cloudflare token comes from
/// `CLOUDFLARE_API_TOKEN` (or, for the demo's own edge, from the caller).
pub fn from_plan(
    plan: &Plan,
    token: Option<cloudflare::Token>,
) -> Result<Box<dyn TrafficSwitch>, SwitchError> {
    match &plan.switch {
        SwitchPlan::Cloudflare(cf) => {
            let token = match token {
                Some(t) => t,
                None => cloudflare::Token::from_env()?,
            };
            Ok(Box::new(cloudflare::CloudflareSwitch::new(
                cf,
                token,
                plan.timeouts.flip,
            )?))
        }
        SwitchPlan::Command(c) => Ok(Box::new(command::CommandSwitch::new(
            c.clone(),
            plan.timeouts.flip,
        ))),
    }
}
