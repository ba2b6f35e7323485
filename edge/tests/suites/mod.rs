//! Test groups of the edge binary beyond the API and routing basics in
//! `edge.rs`, one file per concern:
//!
//! - [`idle_timeout`]: a connection idle past `idle_timeout` re-resolves
//!   the record; a busy one keeps its moment in the propagation window.

pub mod idle_timeout;
