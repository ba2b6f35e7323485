//! Two services that are not the example app, written the way a user of
//! handover would bring them, so that `migrator run` can be tested (and
//! documented, in docs/any-service.md) against something it was not built
//! around: its own requests, its own convergence signal, its own ids.
//!
//! - [`kv`] — `kv-service`: a key-value store over HTTP whose instances share
//!   one append-only log file and follow it with real replication lag.
//!   Convergence comes from Prometheus metrics, ids from a paginated JSON
//!   listing, the answering instance from the JSON body.
//! - [`orders`] — `pg-orders`: an HTTP API in front of PostgreSQL. Health is
//!   a plain `/status`, the answering instance is in `X-Served-By`, ids are
//!   read back with SQL.
//!
//! What both share, the way any small service shares it:
//! - [`serving`]: the stdout line callers wait for, serving until SIGTERM
//!   with a drain, JSON error replies, exit codes.
//! - [`fault`]: `--lose-every N`, the one deliberate bug (test-only): a write
//!   is acknowledged and never stored, so a test can prove that handover's
//!   reconciler catches a service that loses acknowledged writes.
//! - [`name`]: what a key or an order id may look like.

pub mod fault;
pub mod kv;
pub mod name;
pub mod orders;
pub mod serving;
