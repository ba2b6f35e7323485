//! The ack log: one JSON line per request sent, streamed to disk (never held
//! in memory), flushed and fsynced at the end so the reconciler reads it all.

use crate::record::Record;
use crate::Error;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct AckLog {
    path: PathBuf,
    out: BufWriter<File>,
    lines: u64,
    /// The line being built (reused).
    line: Vec<u8>,
}

impl AckLog {
    /// Creates (truncates) the file now, so a bad path fails before sending.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let file = File::create(path)
            .map_err(|e| Error::Usage(format!("cannot create ack log {}: {e}", path.display())))?;
        Ok(AckLog {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 * 1024, file),
            lines: 0,
            line: Vec::with_capacity(512),
        })
    }

    pub fn write(&mut self, r: &Record) -> Result<(), Error> {
        self.line.clear();
        r.write_ack_json(&mut self.line);
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(|e| Error::file("writing ack log", &self.path, e))?;
        self.lines += 1;
        Ok(())
    }

    /// Flushes and fsyncs; returns the number of lines written.
    pub fn finish(mut self) -> Result<u64, Error> {
        self.out
            .flush()
            .map_err(|e| Error::file("flushing ack log", &self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| Error::file("syncing ack log", &self.path, e))?;
        Ok(self.lines)
    }
}
