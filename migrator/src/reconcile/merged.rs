//! Several feeders' ack logs read as one stream in completion order (a
//! k-way merge on `done_ns`): one buffered reader and one pending record per
//! log, never a whole log in memory. Each feeder writes its log in the
//! order its requests completed, so the merge is in completion order too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use handover_contract::AckRecord;

use super::acklog::AckLogError;

/// One log's reader and its line count so far.
struct Source {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
    buf: String,
}

impl Source {
    fn open(path: &Path) -> Result<Source, AckLogError> {
        let file = File::open(path).map_err(|source| AckLogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 16, file),
            line: 0,
            buf: String::new(),
        })
    }

    /// The next record, skipping blank lines; `None` at the end.
    fn next(&mut self) -> Result<Option<AckRecord>, AckLogError> {
        loop {
            self.buf.clear();
            let read = self
                .reader
                .read_line(&mut self.buf)
                .map_err(|source| AckLogError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return serde_json::from_str(text)
                .map(Some)
                .map_err(|e| self.error(e.to_string()));
        }
    }

    fn error(&self, reason: String) -> AckLogError {
        AckLogError::Line {
            path: self.path.clone(),
            line: self.line,
            reason,
        }
    }
}

/// Calls `each` for every record of every log in `paths`, ordered by
/// `done_ns` across logs (file order within one); returns how many.
pub fn for_each_merged(
    paths: &[PathBuf],
    mut each: impl FnMut(&AckRecord) -> Result<(), String>,
) -> Result<u64, AckLogError> {
    let mut sources = paths
        .iter()
        .map(|p| Source::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    // (done_ns, source index): the heap holds each log's pending record.
    let mut pending: Vec<Option<AckRecord>> = Vec::with_capacity(sources.len());
    let mut heap = BinaryHeap::new();
    for (i, s) in sources.iter_mut().enumerate() {
        let first = s.next()?;
        if let Some(r) = &first {
            heap.push(Reverse((r.done_ns, i)));
        }
        pending.push(first);
    }
    let mut count = 0;
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some(record) = pending[i].take() else {
            continue;
        };
        each(&record).map_err(|reason| sources[i].error(reason))?;
        count += 1;
        pending[i] = sources[i].next()?;
        if let Some(r) = &pending[i] {
            heap.push(Reverse((r.done_ns, i)));
        }
    }
    Ok(count)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use handover_contract::Outcome;
    use std::io::Write;

    fn write_log(dir: &Path, name: &str, done: &[u64]) -> PathBuf {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        for d in done {
            let r = AckRecord {
                id: format!("{name}-{d}"),
                due_ns: *d,
                done_ns: *d,
                outcome: Outcome::Ok,
                status: Some(201),
                instance: None,
                latency_us: 1,
                user_id: None,
                items_digest: None,
            };
            writeln!(f, "{}", serde_json::to_string(&r).unwrap()).unwrap();
        }
        path
    }

    #[test]
    fn logs_merge_in_completion_order_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_log(dir.path(), "a", &[1, 4, 7, 10]);
        let b = write_log(dir.path(), "b", &[2, 5, 8]);
        let c = write_log(dir.path(), "c", &[3, 6, 9, 11, 12]);
        let mut done = Vec::new();
        let n = for_each_merged(&[a.clone(), b, c], |r| {
            done.push(r.done_ns);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 12);
        assert_eq!(done, (1..=12).collect::<Vec<_>>());

        std::fs::write(&a, "{\"nope\": 1}\n").unwrap();
        let err = for_each_merged(&[a], |_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("a, line 1"), "{err}");
    }
}
