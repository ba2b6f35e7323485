//! The open-loop order driver: exact rate, per-order ack log, instance-change
//! detection.
//!
//! A run is a pipeline: pacer → slot queue → workers (one keep-alive
//! connection each) → records → collector (aggregate, ack log, printer).
//! Library users call [`start`], poll [`Handle::live`], [`Handle::stop`] it,
//! and [`Handle::finish`] it for the report.
//!
//! - [`options`]: what a run is asked to do ([`Options`], [`ClientKind`]), and its validation.
//! - [`driver`]: [`start`], [`Handle`]: wires the pipeline, turns its counts into the report.
//! - [`pacer`]: the absolute open-loop schedule and the loop that releases due slots.
//! - [`worker`]: the slot queue and the workers (grown on demand): slot → request → [`record::Record`].
//! - [`template`]: [`RequestTemplate`], any service's request (placeholders, checks, rendering).
//! - [`workload`]: the run's request [`workload::Plan`]; order ids and bodies, a pure function of the slot.
//! - [`outcome`]: a reply's status → ok / rejected / indeterminate (`ok_status`).
//! - [`transport`]: which client carries a request (own HTTP/1.1 for http, reqwest for https), `--resolve`, timeouts.
//! - [`http1`]: the feeder's own minimal HTTP/1.1 client connection.
//! - [`record`]: one finished request, and its ack line.
//! - [`live`]: the counters the pipeline shares and the [`Live`] snapshot callers read.
//! - [`collector`]: records → ack log, aggregate, progress output.
//! - [`aggregate`]: the pure aggregator (histograms, seconds, gaps, report).
//! - [`handover`]: instance-change and overlap detection.
//! - [`histogram`]: HDR histograms and their mergeable encoding.
//! - [`ack_log`]: the streamed, fsynced JSON-lines ack log file.
//! - [`printer`]: per-second lines, events, summary; colour via `handover_cli::Style`.
//! - [`merge`]: combining reports of several feeders; [`shard`]: one of several feeders' share of a schedule.
//! - [`view`]: the live terminal view (ratatui), also under the migrator's steps; `--cast`.
//! - [`cli`]: the command line (`Opts`) and its `run`.
//! - [`error`]: the typed [`Error`], split by who has to act; [`clock`]: the run's time base.

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
pub mod outcome;
pub mod pacer;
pub mod printer;
pub mod record;
pub mod shard;
pub mod template;
pub mod transport;
pub mod view;
pub mod worker;
pub mod workload;

pub use driver::{start, Finished, Handle, Stopper};
pub use error::Error;
pub use live::{Live, Watch};
pub use options::{ClientKind, Options, Progress, UserSource, Workload};
pub use template::{RequestTemplate, TemplateError};
