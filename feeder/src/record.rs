//! What a worker knows about one request once it is over.

use handover_contract::{AckRecord, Outcome};

/// One finished request, on the run's Unix-ns time base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The order id (probe mode: `{run_id}-{seq}` as well).
    pub id: String,
    /// When it was due on the schedule.
    pub due_ns: u64,
    /// When it was actually sent (after any pacer lateness).
    pub sent_ns: u64,
    /// When its outcome was known.
    pub done_ns: u64,
    pub status: Option<u16>,
    pub instance: Option<String>,
    pub user_id: Option<String>,
    pub items_digest: Option<String>,
}

impl Record {
    pub fn outcome(&self) -> Outcome {
        Outcome::from_status(self.status)
    }

    /// From the due time: includes queueing, so a stall is never hidden.
    pub fn latency_us(&self) -> u64 {
        self.done_ns.saturating_sub(self.due_ns) / 1_000
    }

    /// From the send time: what the server (and network) took.
    pub fn service_us(&self) -> u64 {
        self.done_ns.saturating_sub(self.sent_ns) / 1_000
    }

    pub fn to_ack(&self) -> AckRecord {
        AckRecord {
            id: self.id.clone(),
            due_ns: self.due_ns,
            done_ns: self.done_ns,
            outcome: self.outcome(),
            status: self.status,
            instance: self.instance.clone(),
            latency_us: self.latency_us(),
            user_id: self.user_id.clone(),
            items_digest: self.items_digest.clone(),
        }
    }
}
