//! The open-loop order driver: exact rate, per-order ack log, instance-change
//! detection.
//!
//! A run is a pipeline (see `DESIGN.md`):
//! pacer → workers → records → aggregator → printer / ack log.
//!
//! - [`options`]: what a run is asked to do, and its validation.
//! - [`driver`]: [`start`] a run, get a [`Handle`], stop it, get the report.
//! - [`live`]: the running totals a caller can poll.
//! - [`error`]: typed errors, split into usage and run failures.

pub mod driver;
pub mod error;
pub mod live;
pub mod options;

pub use driver::{start, Handle};
pub use error::Error;
pub use live::Live;
pub use options::{Options, Progress, UserSource, Workload};
