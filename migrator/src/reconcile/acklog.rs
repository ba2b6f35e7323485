//! Streaming reader of the feeder's ack logs (JSON lines of [`AckRecord`]):
//! one reused line buffer, whatever the file size.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use handover_contract::AckRecord;

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
        let bad = |reason: String| AckLogError::Line {
            path: path.to_path_buf(),
            line: number,
            reason,
        };
        let record: AckRecord = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        each(&record).map_err(bad)?;
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
}
