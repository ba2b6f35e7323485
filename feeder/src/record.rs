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

    /// Appends the ack line ([`AckRecord`]'s exact JSON, a test pins the
    /// equality) to `out`: written per request, so by hand, without a
    /// serializer or a copy of any field.
    pub fn write_ack_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        json_str(out, &self.id);
        out.extend_from_slice(b",\"due_ns\":");
        decimal(out, self.due_ns);
        out.extend_from_slice(b",\"done_ns\":");
        decimal(out, self.done_ns);
        out.extend_from_slice(match self.outcome() {
            Outcome::Ok => b",\"outcome\":\"ok\"".as_slice(),
            Outcome::Rejected => b",\"outcome\":\"rejected\"".as_slice(),
            Outcome::Indeterminate => b",\"outcome\":\"indeterminate\"".as_slice(),
        });
        if let Some(status) = self.status {
            out.extend_from_slice(b",\"status\":");
            decimal(out, u64::from(status));
        }
        if let Some(instance) = &self.instance {
            out.extend_from_slice(b",\"instance\":");
            json_str(out, instance);
        }
        out.extend_from_slice(b",\"latency_us\":");
        decimal(out, self.latency_us());
        if let Some(user) = &self.user_id {
            out.extend_from_slice(b",\"user_id\":");
            json_str(out, user);
        }
        if let Some(digest) = &self.items_digest {
            out.extend_from_slice(b",\"items_digest\":");
            json_str(out, digest);
        }
        out.push(b'}');
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

fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A JSON string, escaped as serde_json does (`"`, `\\`, control characters).
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
        let odd = Record {
            instance: Some("q\"uo\\te\u{1}\n\t\u{8}\u{c}\r\u{1f}é→".into()),
            status: Some(503),
            ..full.clone()
        };
        let rejected = Record {
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
