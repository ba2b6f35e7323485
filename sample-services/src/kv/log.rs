//! The store: one append-only file of JSON lines,
//! `{"key":"k1","value":…,"instance":"a"}`, shared by every instance.
//!
//! - Writers take turns with an exclusive `flock(2)` on the file. Under the
//!   lock a writer first reads what the others appended, so its decision
//!   (new, same, conflict) is made against the whole log; then it appends
//!   and `fsync`s before anyone is told "stored". Nobody else can be writing
//!   while the lock is held, so a line without its newline at that moment
//!   is a torn append of a writer that died mid-write (and was therefore
//!   never acknowledged): the writer cuts it off.
//! - Readers take no lock: they read complete lines only and leave a
//!   partial last line for the next read.
//! - A record's position is its line number; the head is the number of
//!   complete lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most bytes one read takes; four times the largest record (the request
/// body limit), so every read makes progress and memory stays bounded.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub value: Value,
    /// The instance that appended it.
    pub instance: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file cannot be opened, read, locked or written.
    #[error("log file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A complete line that is not a record: someone wrote into the file.
    #[error("log file {path}: the line at byte {offset} is not a record: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// Complete records read after an offset.
#[derive(Debug, Default)]
pub struct Chunk {
    pub records: Vec<Record>,
    /// The offset just after the last complete line read.
    pub end: u64,
}

/// The open log file.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    file: File,
}

impl Log {
    /// Opens the file, creating it empty if absent.
    pub fn open(path: &Path) -> Result<Log, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| LogError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Log {
            path: path.to_path_buf(),
            file,
        })
    }

    fn io(&self, source: std::io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads the complete lines after `offset` (at most [`CHUNK_BYTES`]);
    /// an empty chunk means the reader is at the head.
    pub fn read_after(&self, offset: u64) -> Result<Chunk, LogError> {
        let len = self.file.metadata().map_err(|e| self.io(e))?.len();
        let want =
            usize::try_from(len.saturating_sub(offset)).map_or(CHUNK_BYTES, |n| n.min(CHUNK_BYTES));
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < buf.len() {
            let at = offset + filled as u64;
            match self.file.read_at(&mut buf[filled..], at) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        let complete = match buf[..filled].iter().rposition(|b| *b == b'\n') {
            Some(last) => last + 1,
            None if filled == CHUNK_BYTES => {
                return Err(self.corrupt(offset, format!("longer than {CHUNK_BYTES} bytes")))
            }
            None => 0,
        };
        let mut records = Vec::new();
        let mut at = 0;
        for line in buf[..complete].split_inclusive(|b| *b == b'\n') {
            let record = serde_json::from_slice(line)
                .map_err(|e| self.corrupt(offset + at as u64, e.to_string()))?;
            records.push(record);
            at += line.len();
        }
        Ok(Chunk {
            records,
            end: offset + complete as u64,
        })
    }

    fn corrupt(&self, offset: u64, reason: String) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    /// Waits for the exclusive writer's lock; released when the guard drops
    /// (or the process dies).
    pub fn lock(&self) -> Result<Locked<'_>, LogError> {
        let file = self.file.try_clone().map_err(|e| self.io(e))?;
        let flock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| self.io(std::io::Error::from(errno)))?;
        Ok(Locked { log: self, flock })
    }
}

/// The log while this process holds the writer's lock.
pub struct Locked<'a> {
    log: &'a Log,
    flock: Flock<File>,
}

impl Locked<'_> {
    /// Cuts off whatever follows the last complete line at `complete_end`
    /// (a torn append); true if there was something to cut.
    pub fn cut_torn_tail(&self, complete_end: u64) -> Result<bool, LogError> {
        let len = self.flock.metadata().map_err(|e| self.log.io(e))?.len();
        if len <= complete_end {
            return Ok(false);
        }
        tracing::warn!(bytes = len - complete_end, "cutting off a torn append");
        self.flock
            .set_len(complete_end)
            .map_err(|e| self.log.io(e))?;
        Ok(true)
    }

    /// Appends `records` in one write and `fsync`s; returns the bytes written.
    pub fn append(&mut self, records: &[Record]) -> Result<u64, LogError> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut lines = Vec::new();
        for r in records {
            serde_json::to_writer(&mut lines, r).map_err(|e| self.log.io(e.into()))?;
            lines.push(b'\n');
        }
        let file: &mut File = &mut self.flock;
        file.write_all(&lines).map_err(|e| self.log.io(e))?;
        file.sync_data().map_err(|e| self.log.io(e))?;
        Ok(lines.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(key: &str, value: Value) -> Record {
        Record {
            key: key.into(),
            value,
            instance: "a".into(),
        }
    }

    /// Two opens of one new log file, as two instances have.
    fn two_handles() -> (tempfile::TempDir, PathBuf, Log, Log) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.log");
        let (a, b) = (
            Log::open(&path).expect("open"),
            Log::open(&path).expect("open"),
        );
        (dir, path, a, b)
    }

    #[test]
    fn appends_are_read_back_in_order_by_another_handle() {
        let (_dir, _, writer, reader) = two_handles();
        let batch = [rec("k1", json!(1)), rec("k2", json!({"x": [true]}))];
        let bytes = writer.lock().expect("lock").append(&batch).expect("append");
        let chunk = reader.read_after(0).expect("read");
        assert_eq!(chunk.records, batch);
        assert_eq!(chunk.end, bytes);
        assert!(reader
            .read_after(chunk.end)
            .expect("read")
            .records
            .is_empty());
    }

    #[test]
    fn a_partial_line_is_left_for_later_and_cut_by_the_next_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.log");
        let log = Log::open(&path).expect("open");
        log.lock()
            .expect("lock")
            .append(&[rec("k1", json!(1))])
            .expect("append");
        let whole = std::fs::metadata(&path).expect("meta").len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(br#"{"key":"k2","va"#))
            .expect("torn write");
        let chunk = log.read_after(0).expect("read");
        assert_eq!((chunk.records.len(), chunk.end), (1, whole));
        let mut locked = log.lock().expect("lock");
        assert!(locked.cut_torn_tail(chunk.end).expect("cut"));
        assert!(!locked.cut_torn_tail(chunk.end).expect("nothing left"));
        locked.append(&[rec("k3", json!(3))]).expect("append");
        let keys: Vec<String> = log
            .read_after(0)
            .expect("read")
            .records
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(keys, ["k1", "k3"]);
    }

    #[test]
    fn a_line_that_is_not_a_record_names_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.log");
        let good = "{\"key\":\"k\",\"value\":1,\"instance\":\"a\"}\n";
        std::fs::write(&path, format!("{good}not json\n")).expect("write");
        let err = Log::open(&path)
            .expect("open")
            .read_after(0)
            .expect_err("corrupt");
        let at = good.len() as u64;
        assert!(
            matches!(err, LogError::Corrupt { offset, .. } if offset == at),
            "{err}"
        );
    }

    #[test]
    fn the_lock_excludes_another_open_file() {
        let (_dir, path, a, b) = two_handles();
        let held = a.lock().expect("lock");
        let other = File::open(&path).expect("open");
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        drop(b.lock().expect("free again"));
    }
}
