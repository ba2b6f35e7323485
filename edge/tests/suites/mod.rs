//! Test groups of the edge binary beyond the API and routing basics in
//! `edge.rs`, one file per concern:
//!
//! - [`api_fuzz`]: record bodies fuzzed against the API in process.
//! - [`api_hold`]: API faults that answer late (`delay_ms`) or only when
//!   cleared (`hang`).
//! - [`h1`]: the proxy's own HTTP/1.1 path — framing passed through, the
//!   keep-alive race, and requests it hands to hyper on the same connection.
//! - [`idle_timeout`]: a connection idle past `idle_timeout` re-resolves
//!   the record; a busy one keeps its moment in the propagation window.
//! - [`origin_faults`]: proxy faults per origin — latency, reset, blackhole.

pub mod api_fuzz;
pub mod api_hold;
pub mod h1;
pub mod idle_timeout;
pub mod origin_faults;
