//! What a worker knows about one request once it is over.

use std::borrow::Cow;

use handover_contract::{AckLine, AckRecord, Outcome};

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
    /// From the status, by the run's rule (a template's `ok_status`, or
    /// the contract's [`Outcome::from_status`]).
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub instance: Option<String>,
    pub user_id: Option<String>,
    pub items_digest: Option<String>,
}

impl Record {
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// From the due time: includes queueing, so a stall is never hidden.
    pub fn latency_us(&self) -> u64 {
        self.done_ns.saturating_sub(self.due_ns) / 1_000
    }

    /// From the send time: what the server (and network) took.
    pub fn service_us(&self) -> u64 {
        self.done_ns.saturating_sub(self.sent_ns) / 1_000
    }

    /// The ack line of this request, borrowing its strings.
    pub fn ack_line(&self) -> AckLine<'_> {
        AckLine {
            id: Cow::Borrowed(&self.id),
            due_ns: self.due_ns,
            done_ns: self.done_ns,
            outcome: self.outcome(),
            status: self.status,
            instance: self.instance.as_deref().map(Cow::Borrowed),
            latency_us: self.latency_us(),
            user_id: self.user_id.as_deref().map(Cow::Borrowed),
            items_digest: self.items_digest.as_deref().map(Cow::Borrowed),
        }
    }

    /// Appends the ack line ([`AckRecord`]'s exact JSON) to `out`: written
    /// per request, so by hand ([`AckLine::write`]), without a serializer or
    /// a copy of any field.
    pub fn write_ack_json(&self, out: &mut Vec<u8>) {
        self.ack_line().write(out);
    }

    pub fn to_ack(&self) -> AckRecord {
        self.ack_line().into_record()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_ack_line_is_ack_record_json() {
        let full = Record {
            id: "r-0000000001".into(),
            due_ns: 1_000,
            sent_ns: 2_000,
            done_ns: 3_001_000,
            outcome: Outcome::Ok,
            status: Some(201),
            instance: Some("a".into()),
            user_id: Some("u-0001".into()),
            items_digest: Some("00ff".into()),
        };
        let bare = Record {
            outcome: Outcome::Indeterminate,
            status: None,
            instance: None,
            user_id: None,
            items_digest: None,
            ..full.clone()
        };
        let odd = Record {
            instance: Some("q\"uo\\te\u{1}\n\t\u{8}\u{c}\r\u{1f}é→".into()),
            outcome: Outcome::Indeterminate,
            status: Some(503),
            ..full.clone()
        };
        let rejected = Record {
            outcome: Outcome::Rejected,
            status: Some(404),
            ..full.clone()
        };
        for r in [full, bare, odd, rejected] {
            let mut line = Vec::new();
            r.write_ack_json(&mut line);
            assert_eq!(
                String::from_utf8(line).unwrap(),
                serde_json::to_string(&r.to_ack()).unwrap()
            );
        }
    }
}
