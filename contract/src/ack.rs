//! The ack log: one JSON line per order the feeder sent.
//!
//! [`AckRecord`] is the line as an owned value (serde both ways).
//! [`AckLine`] is the same line borrowed, for the two hot paths: the feeder
//! writes one per request ([`AckLine::write`], by hand into a reused buffer)
//! and the reconciler reads a million ([`AckLine::parse`], zero-copy). The
//! tests below hold all three to the same bytes.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use crate::json;

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

/// One ack line, borrowed: the fields of [`AckRecord`] (required and
/// checked as there), each string borrowed from the line it was read from
/// unless it had escapes, or from the caller's own record when writing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AckLine<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub due_ns: u64,
    pub done_ns: u64,
    pub outcome: Outcome,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub instance: Option<Cow<'a, str>>,
    pub latency_us: u64,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub items_digest: Option<Cow<'a, str>>,
}

/// An optional string borrowed from the input when it has no escapes (serde
/// borrows a bare `Cow<str>` field, but never one inside an `Option`).
fn borrowed<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'a>>::deserialize(d)?.map(|t| t.0))
}

impl<'a> AckLine<'a> {
    /// Reads one line (without its newline), borrowing from it.
    pub fn parse(line: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// Appends the line (without a newline) to `out`: [`AckRecord`]'s exact
    /// JSON, field order and escaping included.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        json::push_str(out, &self.id);
        out.extend_from_slice(b",\"due_ns\":");
        json::push_u64(out, self.due_ns);
        out.extend_from_slice(b",\"done_ns\":");
        json::push_u64(out, self.done_ns);
        out.extend_from_slice(match self.outcome {
            Outcome::Ok => b",\"outcome\":\"ok\"".as_slice(),
            Outcome::Rejected => b",\"outcome\":\"rejected\"".as_slice(),
            Outcome::Indeterminate => b",\"outcome\":\"indeterminate\"".as_slice(),
        });
        if let Some(status) = self.status {
            out.extend_from_slice(b",\"status\":");
            json::push_u64(out, u64::from(status));
        }
        if let Some(instance) = &self.instance {
            out.extend_from_slice(b",\"instance\":");
            json::push_str(out, instance);
        }
        out.extend_from_slice(b",\"latency_us\":");
        json::push_u64(out, self.latency_us);
        if let Some(user) = &self.user_id {
            out.extend_from_slice(b",\"user_id\":");
            json::push_str(out, user);
        }
        if let Some(digest) = &self.items_digest {
            out.extend_from_slice(b",\"items_digest\":");
            json::push_str(out, digest);
        }
        out.push(b'}');
    }

    /// The owned record.
    pub fn into_record(self) -> AckRecord {
        AckRecord {
            id: self.id.into_owned(),
            due_ns: self.due_ns,
            done_ns: self.done_ns,
            outcome: self.outcome,
            status: self.status,
            instance: self.instance.map(Cow::into_owned),
            latency_us: self.latency_us,
            user_id: self.user_id.map(Cow::into_owned),
            items_digest: self.items_digest.map(Cow::into_owned),
        }
    }
}

impl<'a> From<&'a AckRecord> for AckLine<'a> {
    fn from(r: &'a AckRecord) -> Self {
        AckLine {
            id: Cow::Borrowed(&r.id),
            due_ns: r.due_ns,
            done_ns: r.done_ns,
            outcome: r.outcome,
            status: r.status,
            instance: r.instance.as_deref().map(Cow::Borrowed),
            latency_us: r.latency_us,
            user_id: r.user_id.as_deref().map(Cow::Borrowed),
            items_digest: r.items_digest.as_deref().map(Cow::Borrowed),
        }
    }
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

    /// Every outcome, each optional field present and absent, extreme
    /// numbers, and strings that need escaping in every string field.
    fn samples() -> Vec<AckRecord> {
        let base = AckRecord {
            id: "run1-0000000001".into(),
            due_ns: 1_700_000_000_000_000_000,
            done_ns: 1_700_000_000_001_500_000,
            outcome: Outcome::Ok,
            status: Some(201),
            instance: Some("a".into()),
            latency_us: 1500,
            user_id: Some("u-0001".into()),
            items_digest: Some("00000000000000ff".into()),
        };
        let mut out = Vec::new();
        for status in [Some(201), Some(200), Some(409), Some(404), Some(503), None] {
            for present in 0..8u8 {
                let some = |bit: u8, v: &Option<String>| v.clone().filter(|_| present & bit != 0);
                out.push(AckRecord {
                    outcome: Outcome::from_status(status),
                    status,
                    instance: some(1, &base.instance),
                    user_id: some(2, &base.user_id),
                    items_digest: some(4, &base.items_digest),
                    ..base.clone()
                });
            }
        }
        let every_control: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "q\"uo\\te",
            "\u{1}\n\t\u{8}\u{c}\r\u{1f}",
            every_control.as_str(),
            "é→ 😀",
            "/\u{7f}",
            "",
        ] {
            out.push(AckRecord {
                id: s.into(),
                instance: Some(s.into()),
                user_id: Some(s.into()),
                items_digest: Some(s.into()),
                ..base.clone()
            });
        }
        out.push(AckRecord {
            due_ns: 0,
            done_ns: u64::MAX,
            latency_us: u64::MAX,
            status: Some(u16::MAX),
            outcome: Outcome::Indeterminate,
            ..base
        });
        out
    }

    fn written(rec: &AckRecord) -> String {
        let mut line = Vec::new();
        AckLine::from(rec).write(&mut line);
        String::from_utf8(line).expect("the writer writes UTF-8")
    }

    #[test]
    fn the_writer_writes_what_serde_json_writes() {
        for rec in samples() {
            assert_eq!(
                written(&rec),
                serde_json::to_string(&rec).expect("serialize")
            );
        }
    }

    #[test]
    fn lines_round_trip_through_either_reader_and_writer() {
        for rec in samples() {
            let ours = written(&rec);
            let theirs = serde_json::to_string(&rec).expect("serialize");
            // Written by hand, read by serde and by the borrowed reader.
            assert_eq!(
                serde_json::from_str::<AckRecord>(&ours).expect("serde reads"),
                rec
            );
            let line = AckLine::parse(&ours).expect("borrowed reader reads");
            assert_eq!(line, AckLine::from(&rec));
            assert_eq!(line.into_record(), rec);
            // Written by serde, read by the borrowed reader.
            let line = AckLine::parse(&theirs).expect("borrowed reader reads");
            assert_eq!(line.into_record(), rec);
        }
    }

    #[test]
    fn plain_strings_are_borrowed_and_escaped_ones_decoded() {
        let plain = r#"{"id":"plain","due_ns":1,"done_ns":2,"outcome":"ok","status":201,"instance":"a","latency_us":3,"user_id":"u","items_digest":"00000000000000ff"}"#;
        let line = AckLine::parse(plain).expect("parse");
        for field in [
            Some(&line.id),
            line.instance.as_ref(),
            line.user_id.as_ref(),
            line.items_digest.as_ref(),
        ] {
            assert!(matches!(field, Some(Cow::Borrowed(_))), "{field:?}");
        }
        // Escapes another writer may use (`\u00e9`, `\/`) decode as serde's do.
        let escaped = r#"{"id":"q\"\u00e9\/","due_ns":1,"done_ns":2,"outcome":"ok","latency_us":3,"user_id":"\u0041\n"}"#;
        let line = AckLine::parse(escaped).expect("parse");
        assert_eq!(line.id, "q\"é/");
        assert!(matches!(line.id, Cow::Owned(_)));
        assert_eq!(line.user_id.as_deref(), Some("A\n"));
        assert_eq!(
            line.into_record(),
            serde_json::from_str::<AckRecord>(escaped).expect("serde parses")
        );
    }

    #[test]
    fn the_borrowed_reader_refuses_what_ack_record_refuses() {
        let lines = [
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"rejected","latency_us":1,"extra":true}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"ok","instance":null,"latency_us":1}"#,
            r#"{"id":"x","done_ns":2,"outcome":"ok","latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"maybe","latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"OK","latency_us":1}"#,
            r#"{"id":7,"due_ns":1,"done_ns":2,"outcome":"ok","latency_us":1}"#,
            r#"{"id":"x","due_ns":-1,"done_ns":2,"outcome":"ok","latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"ok","status":70000,"latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"ok","user_id":5,"latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"ok","latency_us":1} trailing"#,
            r#"not json"#,
            "",
        ];
        for line in lines {
            let record = serde_json::from_str::<AckRecord>(line);
            let borrowed = AckLine::parse(line);
            assert_eq!(record.is_ok(), borrowed.is_ok(), "{line}");
            if let (Ok(r), Ok(b)) = (record, borrowed) {
                assert_eq!(b.into_record(), r, "{line}");
            }
        }
    }
}
