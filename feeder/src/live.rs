//! The running totals a caller can read at any moment without stopping the run.

use std::collections::BTreeMap;

/// A cheap snapshot of a running feeder (see [`crate::Handle::live`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Live {
    pub sent: u64,
    pub ok: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    pub missed: u64,
    pub in_flight: u64,
    pub by_instance: BTreeMap<String, u64>,
    pub last_instance: Option<String>,
    /// Unix ns of the latest 2xx.
    pub last_ok_ns: Option<u64>,
}
