//! The wire contract between handover's programs.
//!
//! The example-app, the feeder, the edge and the migrator never link each
//! other's code; they talk over HTTP, files and command lines. The shapes they
//! exchange live here, free of I/O, so a change to one is a compile error in
//! every reader instead of a silent mismatch at run time.
//!
//! - [`ack`]: one line of the feeder's ack log, the per-order record of truth:
//!   the owned [`AckRecord`], and the borrowed [`AckLine`] with the fast
//!   writer and the zero-copy reader the feeder and the reconciler use.
//! - [`report`]: the feeder's report (also embedded in the migrator's report).
//! - [`health`]: the example-app's `/health` document.
//! - [`order`]: orders, users, companies, the JSON error body, and the
//!   line-items digest ([`ItemsDigest`]) both the feeder and the reconciler compute.
//! - [`duration`]: the `500ms` / `20s` / `5m` flag syntax every binary accepts.
//! - [`json`]: JSON integers and escaped strings written by hand, for lines
//!   written once per request.

pub mod ack;
pub mod duration;
pub mod health;
pub mod json;
pub mod order;
pub mod report;

pub use ack::{AckLine, AckRecord, Outcome};
pub use health::{Health, HealthChecks};
pub use order::{Company, ErrorBody, ErrorDetail, ItemsDigest, LineItem, NewOrder, Order, User};
pub use report::{FeederReport, Handover, LatencySummary, RateStats};

/// The response header that names the instance that answered.
pub const INSTANCE_HEADER: &str = "X-Instance";

/// Exit codes shared by every binary.
pub mod exit {
    /// Success, or a passed verdict.
    pub const OK: i32 = 0;
    /// A failed verdict or a failed run.
    pub const FAILED: i32 = 1;
    /// Bad usage, bad configuration, or a failed preflight: nothing was changed.
    pub const USAGE: i32 = 2;
}
