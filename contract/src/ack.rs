//! The ack log: one JSON line per order the feeder sent.

use serde::{Deserialize, Serialize};

/// The client's knowledge of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// 2xx: the server acknowledged the order; it must exist afterwards.
    Ok,
    /// 4xx: the server refused it; it must not exist afterwards.
    Rejected,
    /// Timeout, connection error or 5xx: it may or may not exist.
    Indeterminate,
}

impl Outcome {
    /// Classifies an HTTP status; `None` (no response at all) is indeterminate.
    pub fn from_status(status: Option<u16>) -> Self {
        match status {
            Some(s) if (200..300).contains(&s) => Outcome::Ok,
            Some(s) if (400..500).contains(&s) => Outcome::Rejected,
            _ => Outcome::Indeterminate,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Indeterminate => "indeterminate",
        }
    }
}

/// One line of the ack log (`acks.jsonl`).
///
/// Times are nanoseconds since the Unix epoch so that the migrator can place
/// every request on the same timeline as its own steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRecord {
    /// The order id (or, in probe mode, the request's sequence label).
    pub id: String,
    /// When the request was due on the open-loop schedule.
    pub due_ns: u64,
    /// When its outcome became known.
    pub done_ns: u64,
    pub outcome: Outcome,
    /// HTTP status; absent when there was no response (timeout, reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The `X-Instance` of the reply, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Latency from the due time (not the send time): no coordinated omission.
    pub latency_us: u64,
    /// The user the order was placed for, so the reconciler can check content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A digest of the line items sent (see [`crate::order::line_items_digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_digest: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_from_status() {
        assert_eq!(Outcome::from_status(Some(201)), Outcome::Ok);
        assert_eq!(Outcome::from_status(Some(200)), Outcome::Ok);
        assert_eq!(Outcome::from_status(Some(409)), Outcome::Rejected);
        assert_eq!(Outcome::from_status(Some(503)), Outcome::Indeterminate);
        assert_eq!(Outcome::from_status(Some(302)), Outcome::Indeterminate);
        assert_eq!(Outcome::from_status(None), Outcome::Indeterminate);
    }

    #[test]
    fn ack_line_round_trips_and_omits_empty_fields() {
        let rec = AckRecord {
            id: "run1-0000000001".into(),
            due_ns: 1,
            done_ns: 2,
            outcome: Outcome::Indeterminate,
            status: None,
            instance: None,
            latency_us: 1000,
            user_id: None,
            items_digest: None,
        };
        let line = serde_json::to_string(&rec).expect("serialize");
        assert_eq!(
            line,
            r#"{"id":"run1-0000000001","due_ns":1,"done_ns":2,"outcome":"indeterminate","latency_us":1000}"#
        );
        let back: AckRecord = serde_json::from_str(&line).expect("parse");
        assert_eq!(back, rec);
    }
}
