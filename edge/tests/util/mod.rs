//! Helpers for the edge's integration tests:
//!
//! - [`setup`]: the fixture builder — an edge with only what a test changes
//!   (timings, faults, one or two origins) — and API calls against it.
//! - [`process`]: the edge binary as a child process, and its config text.
//! - [`origin`]: small in-process origins on loopback addresses.
//! - [`client`]: clients through the proxy (fresh, pooled, one keep-alive).
//! - [`cf`]: the real `cloudflare` crate against the edge.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cf;
pub mod client;
pub mod origin;
pub mod process;
pub mod setup;

pub use cf::*;
pub use client::*;
pub use origin::*;
pub use process::*;
pub use setup::*;

pub const TOKEN: &str = "tok_test_edge_0123456789";
pub const ADMIN: &str = "adm_test_edge_0123456789";
pub const ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const HOST: &str = "shop.handover.test";

pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Reads a counter from Prometheus text; 0 when absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0)
}
