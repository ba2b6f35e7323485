//! The running totals a caller can read at any moment without stopping the
//! run: the counters the pacer, the workers and the collector update
//! ([`Shared`]) and the snapshot a caller gets of them ([`Live`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    /// Latency from the due time over the last whole second (µs), for a
    /// live view; refreshed once a second.
    pub p50_us: u64,
    pub p99_us: u64,
    /// The longest time without a success so far (see the report's
    /// `max_gap_ms`); refreshed once a second.
    pub max_gap_ns: u64,
    /// The run's first instance change so far: the new instance's first
    /// reply and the old one's last (Unix ns); refreshed once a second.
    pub first_new_ns: Option<u64>,
    pub last_old_ns: Option<u64>,
}

/// A cloneable reader of a running feeder's [`Live`] totals (for a view
/// that polls on its own task; see [`crate::Handle::watch`]).
#[derive(Clone, Debug)]
pub struct Watch(pub(crate) std::sync::Arc<Shared>);

impl Watch {
    pub fn live(&self) -> Live {
        self.0.live()
    }
}

/// Counters shared between the pacer, the workers, the collector and callers.
#[derive(Debug, Default)]
pub struct Shared {
    pub sent: AtomicU64,
    pub missed: AtomicU64,
    pub in_flight: AtomicU64,
    /// Unix ns at which the pacer released its last slot; 0 while sending.
    pub sending_ended_ns: AtomicU64,
    /// Unix ns of the latest request actually sent: the sending period ends
    /// there when requests had to wait for a connection.
    pub last_sent_ns: AtomicU64,
    /// The reply-side totals, refreshed after every batch of records.
    pub replies: Mutex<Live>,
}

impl Shared {
    pub fn live(&self) -> Live {
        let mut live = self
            .replies
            .lock()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        live.sent = self.sent.load(Ordering::Relaxed);
        live.missed = self.missed.load(Ordering::Relaxed);
        live.in_flight = self.in_flight.load(Ordering::Relaxed);
        live
    }
}
