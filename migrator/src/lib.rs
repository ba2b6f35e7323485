//! The migrator: moves a live service from origin A to origin B and proves,
//! order by order, that no acknowledged write was lost.
//!
//! - [`cli`]: the command line (`run`, `demo`, `reconcile`) and exit codes.
//! - [`plan`]: the plan file (TOML) and its flag overrides; validated before anything runs.
//! - [`switch`]: the traffic switch trait; `cloudflare` (v4 API) and `command`.
//! - [`steps`]: preflight → start B → converge → flip → drain A → stop A → reconcile → verdict.
//! - [`health`]: probes of an origin's `/health` (converge, drain, stopped).
//! - [`host`]: this host's limits against the planned load.
//! - [`process`]: the plan's shell commands and the processes they leave running.
//! - [`interrupt`]: Ctrl-C during a cutover: a safe stop first, a forced one second.
//! - [`live`]: the live terminal view of a run (ratatui), and its `--cast` recording.
//! - [`demo`]: the whole cutover on one machine (edge, A, B as child processes).
//! - [`fleet`]: many hosts maintained without downtime, each through hold-over runs.
//! - [`reconcile`]: ack log vs. B's stored orders, per order.
//! - [`plot`]: the SVG timeline of the handover moment.
//! - [`html`]: the self-contained HTML report (`--html`).
//! - [`redact`]: URL passwords masked in everything printed about commands.
//! - [`report`]: the JSON report, the verdict and the human rendering.

pub mod cli;
pub mod demo;
pub mod faults;
pub mod fleet;
pub mod health;
pub mod host;
pub mod html;
pub mod interrupt;
pub mod live;
pub mod plan;
pub mod plot;
pub mod process;
pub mod reconcile;
pub mod redact;
pub mod report;
pub mod sources;
pub mod steps;
pub mod switch;
