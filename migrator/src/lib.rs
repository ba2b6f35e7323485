//! The migrator: moves a live service from origin A to origin B and proves,
//! order by order, that no acknowledged write was lost.
//!
//! - [`plan`]: the plan file (TOML) and its flag overrides; validated before anything runs.
//! - [`switch`]: the traffic switch trait; `cloudflare` (v4 API) and `command`.
//! - [`steps`]: preflight → start B → converge → flip → drain A → stop A → reconcile → verdict.
//! - [`process`]: the plan's shell commands and the processes they leave running.
//! - [`style`]: colour (off under `NO_COLOR` or a pipe) and duration formatting.
//! - [`demo`]: the whole cutover on one machine (edge, A, B as child processes).
//! - [`reconcile`]: ack log vs. B's stored orders, per order.
//! - [`plot`]: the SVG timeline of the handover moment.
//! - [`report`]: the JSON report, the verdict and the human rendering.

pub mod demo;
pub mod plan;
pub mod plot;
pub mod process;
pub mod reconcile;
pub mod report;
pub mod steps;
pub mod style;
pub mod switch;
