//! Streaming reader of the feeder's ack logs (JSON lines of [`AckRecord`]):
//! one reused line buffer, whatever the file size.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use std::borrow::Cow;

use handover_contract::{AckRecord, Outcome};
use serde::Deserialize;

use super::ledger::AckView;

/// What went wrong reading an ack log, with the file and line to look at.
#[derive(Debug, thiserror::Error)]
pub enum AckLogError {
    #[error("cannot read ack log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ack log {}, line {line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// Calls `each` for every record of `path`, in file order. Blank lines are
/// skipped; anything else that is not an [`AckRecord`] stops the read with the
/// line number. `each` may refuse a record with a reason, reported the same way.
pub fn for_each(
    path: &Path,
    mut each: impl FnMut(&AckRecord) -> Result<(), String>,
) -> Result<u64, AckLogError> {
    for_each_line(path, |text| {
        let record: AckRecord = serde_json::from_str(text).map_err(|e| e.to_string())?;
        each(&record)
    })
}

/// [`AckRecord`]'s fields, borrowed from the line when it has no escapes: the
/// reconciler reads a million of these, and four allocations per line are
/// most of the cost. It requires and checks what [`AckRecord`] does.
#[derive(Deserialize)]
struct AckLine<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[allow(dead_code)]
    due_ns: u64,
    #[allow(dead_code)]
    done_ns: u64,
    outcome: Outcome,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<u16>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    instance: Option<Cow<'a, str>>,
    #[allow(dead_code)]
    latency_us: u64,
    #[serde(default, borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    items_digest: Option<Cow<'a, str>>,
}

/// Like [`for_each`], handing out borrowed [`AckView`]s without allocating.
pub fn for_each_view(
    path: &Path,
    mut each: impl FnMut(AckView<'_>) -> Result<(), String>,
) -> Result<u64, AckLogError> {
    for_each_line(path, |text| {
        let line: AckLine<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        each(AckView {
            id: &line.id,
            outcome: line.outcome,
            user_id: line.user_id.as_deref(),
            items_digest: line.items_digest.as_deref(),
        })
    })
}

/// Calls `each` with every non-blank line (trimmed) of `path`.
fn for_each_line(
    path: &Path,
    mut each: impl FnMut(&str) -> Result<(), String>,
) -> Result<u64, AckLogError> {
    let io = |source| AckLogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut number = 0u64;
    let mut records = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Ok(records);
        }
        number += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        each(text).map_err(|reason| AckLogError::Line {
            path: path.to_path_buf(),
            line: number,
            reason,
        })?;
        records += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_records_and_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acks.jsonl");
        let mut f = File::create(&path).unwrap();
        writeln!(
            f,
            r#"{{"id":"a","due_ns":1,"done_ns":2,"outcome":"ok","latency_us":1}}"#
        )
        .unwrap();
        writeln!(f).unwrap();
        writeln!(
            f,
            r#"{{"id":"b","due_ns":1,"done_ns":2,"outcome":"ok","latency_us":1}}"#
        )
        .unwrap();
        writeln!(f, r#"{{"id":"c","outcome":"maybe"}}"#).unwrap();
        drop(f);
        let mut ids = Vec::new();
        let err = for_each(&path, |a| {
            ids.push(a.id.clone());
            Ok(())
        })
        .unwrap_err();
        assert_eq!(ids, ["a", "b"]);
        let msg = err.to_string();
        assert!(msg.contains("line 4"), "{msg}");
        assert!(msg.contains("acks.jsonl"), "{msg}");

        let err = for_each(&dir.path().join("missing.jsonl"), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("missing.jsonl"), "{err}");
    }

    #[test]
    fn borrowed_lines_read_and_refuse_what_ack_records_do() {
        let lines = [
            r#"{"id":"plain","due_ns":1,"done_ns":2,"outcome":"ok","status":201,"instance":"a","latency_us":1,"user_id":"u","items_digest":"00000000000000ff"}"#,
            r#"{"id":"esc\"aped\u00e9","due_ns":1,"done_ns":2,"outcome":"indeterminate","latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"rejected","latency_us":1,"extra":true}"#,
            r#"{"id":"x","done_ns":2,"outcome":"ok","latency_us":1}"#,
            r#"{"id":"x","due_ns":1,"done_ns":2,"outcome":"maybe","latency_us":1}"#,
            r#"{"id":7,"due_ns":1,"done_ns":2,"outcome":"ok","latency_us":1}"#,
            r#"not json"#,
        ];
        for line in lines {
            let record = serde_json::from_str::<AckRecord>(line);
            let borrowed = serde_json::from_str::<AckLine<'_>>(line);
            assert_eq!(record.is_ok(), borrowed.is_ok(), "{line}");
            if let (Ok(r), Ok(b)) = (record, borrowed) {
                let view = AckView {
                    id: &b.id,
                    outcome: b.outcome,
                    user_id: b.user_id.as_deref(),
                    items_digest: b.items_digest.as_deref(),
                };
                assert_eq!(view, AckView::from(&r), "{line}");
            }
        }
    }
}
