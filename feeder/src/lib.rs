//! The open-loop order driver: exact rate, per-order ack log, instance-change
//! detection.
//!
//! A run is a pipeline: pacer → slot queue → workers (one keep-alive
//! connection each) → records → collector (aggregate, ack log, printer). Library users call [`start`], poll [`Handle::live`],
//! [`Handle::stop`] it, and [`Handle::finish`] it for the report.
//!
//! - [`options`]: what a run is asked to do, and its validation.
//! - [`driver`]: [`start`], [`Handle`]; wires the pipeline and the pacer loop.
//! - [`pacer`]: the absolute open-loop schedule.
//! - [`worker`]: the slot queue and the workers: slot → request → [`record::Record`].
//! - [`transport`]: connections (hyper for http, reqwest for https), `--resolve`, timeouts.
//! - [`workload`]: order ids and bodies, a pure function of the slot.
//! - [`collector`]: records → ack log, aggregate, progress output.
//! - [`aggregate`]: the pure aggregator (histograms, seconds, gaps, report).
//! - [`handover`]: instance-change and overlap detection.
//! - [`histogram`]: HDR histograms and their mergeable encoding.
//! - [`ack_log`]: the streamed, fsynced JSON-lines ack log.
//! - [`printer`]: per-second lines, events, summary; colour via one style.
//! - [`merge`]: combining reports of several feeders.
//! - [`cli`]: the command line (`Opts`) and its `run`.
//! - [`live`], [`error`], [`clock`], [`record`]: small supporting types.

pub mod ack_log;
pub mod aggregate;
pub mod cli;
pub mod clock;
pub mod collector;
pub mod driver;
pub mod error;
pub mod handover;
pub mod histogram;
pub mod http1;
pub mod live;
pub mod merge;
pub mod options;
pub mod pacer;
pub mod printer;
pub mod record;
pub mod transport;
pub mod worker;
pub mod workload;

pub use driver::{start, Finished, Handle, Stopper};
pub use error::Error;
pub use live::Live;
pub use options::{ClientKind, Options, Progress, UserSource, Workload};
