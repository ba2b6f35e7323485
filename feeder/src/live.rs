//! The running totals a caller can read at any moment without stopping the run.

use std::collections::BTreeMap;

/// A cheap snapshot of a running feeder (see [`crate::Handle::live`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Requests actually sent (a slot waiting for a connection is not yet).
    pub sent: u64,
    pub ok: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    /// Slots never sent: the in-flight cap was hit, or no connection was
    /// free within the timeout.
    pub missed: u64,
    /// Slots handed to the client and not finished (waiting or sending).
    pub in_flight: u64,
    pub by_instance: BTreeMap<String, u64>,
    pub last_instance: Option<String>,
    /// Unix ns of the latest 2xx.
    pub last_ok_ns: Option<u64>,
}
