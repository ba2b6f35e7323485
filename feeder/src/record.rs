//! What a worker knows about one request once it is over.

use handover_contract::{AckRecord, Outcome};
use serde::Serialize;

/// [`AckRecord`]'s exact JSON shape, borrowed (a test pins the equality).
#[derive(Debug, Serialize)]
pub struct AckLine<'a> {
    pub id: &'a str,
    pub due_ns: u64,
    pub done_ns: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<&'a str>,
    pub latency_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_digest: Option<&'a str>,
}

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

    /// The ack line, borrowing instead of cloning (it is written per request).
    pub fn ack_line(&self) -> AckLine<'_> {
        AckLine {
            id: &self.id,
            due_ns: self.due_ns,
            done_ns: self.done_ns,
            outcome: self.outcome(),
            status: self.status,
            instance: self.instance.as_deref(),
            latency_us: self.latency_us(),
            user_id: self.user_id.as_deref(),
            items_digest: self.items_digest.as_deref(),
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_ack_line_serializes_like_ack_record() {
        let full = Record {
            id: "r-0000000001".into(),
            due_ns: 1_000,
            sent_ns: 2_000,
            done_ns: 3_001_000,
            status: Some(201),
            instance: Some("a".into()),
            user_id: Some("u-0001".into()),
            items_digest: Some("00ff".into()),
        };
        let bare = Record {
            status: None,
            instance: None,
            user_id: None,
            items_digest: None,
            ..full.clone()
        };
        for r in [full, bare] {
            assert_eq!(
                serde_json::to_string(&r.ack_line()).unwrap(),
                serde_json::to_string(&r.to_ack()).unwrap()
            );
        }
    }
}
