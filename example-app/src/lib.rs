//! The event-sourced order service that handover migrates.
//!
//! Every instance keeps an in-memory projection of one shared event log and
//! answers from it; a write is acknowledged only once it is durable in the
//! log and applied here (read-your-writes).
//!
//! - [`opts`]: the command line.
//! - [`run`](mod@run): start-up (store, catch-up, seed, bind, announce) and shutdown.
//! - [`server`]: serving a bound listener until a shutdown future, then draining.
//! - [`api`]: HTTP onto the use cases: routes, handlers, JSON errors,
//!   `X-Instance`, request accounting.
//! - [`body`]: request bodies: the JSON content type, reading within a
//!   limit, draining a refused one so the connection stays usable.
//! - [`admin`]: `/admin/faults`, only with `--fault-injection`.
//! - [`faults`]: the faults an instance injects into itself (rehearsals, tests).
//! - [`orders`]: placing an order (rules, idempotent retries, conflicts,
//!   read-your-writes), apart from HTTP.
//! - [`domain`]: the events and the rules an order must follow.
//! - [`projection`]: companies, users and orders in position order.
//! - [`follower`]: the task that applies the log to the projection, refusing
//!   gaps, and the gate that pauses it.
//! - [`import`]: `EventType {json}` import files and the bundled seed.
//! - [`store`]: the event-store trait, the one store over its backends
//!   (`sqlite:`, `postgres://`), group commit, the hand-off to subscribers.
//! - [`metrics`]: Prometheus text for `/metrics`.
//! - `steady`: the chunked list and sharded index the projection grows
//!   without long pauses.

pub mod admin;
pub mod api;
pub mod body;
pub mod domain;
pub mod faults;
pub mod follower;
pub mod import;
pub mod metrics;
pub mod opts;
pub mod orders;
pub mod projection;
pub mod run;
pub mod server;
mod steady;
pub mod store;

pub use opts::Opts;
pub use run::{run, RunError};
