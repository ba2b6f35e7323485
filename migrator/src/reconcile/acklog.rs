//! Streaming reader of the feeder's ack logs (JSON lines of [`AckRecord`]):
//! one reused line buffer, whatever the file size. Each line is parsed by
//! the contract's borrowed reader ([`AckLine::parse`]); this module owns the
//! file: line numbers, ranges, errors.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use handover_contract::{AckLine, AckRecord};

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

/// The fields of a borrowed line the reconciliation needs.
fn view<'a>(line: &'a AckLine<'_>) -> AckView<'a> {
    AckView {
        id: &line.id,
        outcome: line.outcome,
        user_id: line.user_id.as_deref(),
        items_digest: line.items_digest.as_deref(),
    }
}

/// Like [`for_each`], handing out borrowed [`AckView`]s without allocating.
pub fn for_each_view(
    path: &Path,
    each: impl FnMut(AckView<'_>) -> Result<(), String>,
) -> Result<u64, AckLogError> {
    for_each_view_in(path, 0..u64::MAX, each).map(|span| span.records)
}

/// Lines (blank ones included) and records read from one part of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub lines: u64,
    pub records: u64,
}

/// Calls `each` with every non-blank line (trimmed) of `path`.
fn for_each_line(
    path: &Path,
    each: impl FnMut(&str) -> Result<(), String>,
) -> Result<u64, AckLogError> {
    for_each_line_in(path, 0..u64::MAX, each).map(|span| span.records)
}

/// Calls `each` with every non-blank line of `path` that starts at a byte
/// offset within `range`, so that adjacent ranges read every line exactly
/// once. Line numbers in errors count from the first line of the range.
fn for_each_line_in(
    path: &Path,
    range: Range<u64>,
    mut each: impl FnMut(&str) -> Result<(), String>,
) -> Result<Span, AckLogError> {
    let io = |source| AckLogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut pos = 0u64;
    if range.start > 0 {
        // Skip the line that began before the range (its owner reads it).
        reader.seek(SeekFrom::Start(range.start - 1)).map_err(io)?;
        let mut skipped = Vec::new();
        pos = range.start - 1 + reader.read_until(b'\n', &mut skipped).map_err(io)? as u64;
    }
    let mut line = String::new();
    let mut span = Span::default();
    while pos < range.end {
        line.clear();
        let read = reader.read_line(&mut line).map_err(io)?;
        if read == 0 {
            break;
        }
        pos += read as u64;
        span.lines += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        each(text).map_err(|reason| AckLogError::Line {
            path: path.to_path_buf(),
            line: span.lines,
            reason,
        })?;
        span.records += 1;
    }
    Ok(span)
}

/// [`for_each_view`] over the lines starting within `range` (see
/// [`Span`]): lets several threads index one large log.
pub fn for_each_view_in(
    path: &Path,
    range: Range<u64>,
    mut each: impl FnMut(AckView<'_>) -> Result<(), String>,
) -> Result<Span, AckLogError> {
    for_each_line_in(path, range, |text| {
        let line = AckLine::parse(text).map_err(|e| e.to_string())?;
        each(view(&line))
    })
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
    fn adjacent_ranges_read_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acks.jsonl");
        let mut f = File::create(&path).unwrap();
        for i in 0..40 {
            writeln!(
                f,
                r#"{{"id":"id-{i}","due_ns":1,"done_ns":2,"outcome":"ok","latency_us":1}}"#
            )
            .unwrap();
            if i % 7 == 0 {
                writeln!(f).unwrap();
            }
        }
        drop(f);
        let size = std::fs::metadata(&path).unwrap().len();
        for parts in [1u64, 2, 3, 5, 97] {
            let mut ids = Vec::new();
            let mut lines = 0;
            for k in 0..parts {
                let range = size * k / parts..size * (k + 1) / parts;
                let span = for_each_view_in(&path, range, |a| {
                    ids.push(a.id.to_string());
                    Ok(())
                })
                .unwrap();
                lines += span.lines;
            }
            let want: Vec<String> = (0..40).map(|i| format!("id-{i}")).collect();
            assert_eq!(ids, want, "{parts} parts");
            assert_eq!(lines, 46, "{parts} parts");
        }
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
