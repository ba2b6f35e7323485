//! `--cast FILE`: the live view recorded as an asciicast v2 file — a JSON
//! header line, then one `[seconds, "o", "bytes"]` line per frame — which
//! any asciicast player replays and `agg` turns into a GIF.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

/// An open recording.
pub struct Cast {
    out: BufWriter<File>,
    t0: Instant,
    /// Bytes of a character split across two frames wait for the rest.
    partial: Vec<u8>,
}

impl Cast {
    /// Creates `path` and writes the header for a `width`×`height` screen.
    pub fn create(path: &Path, width: u16, height: u16, title: &str) -> io::Result<Cast> {
        let mut out = BufWriter::new(File::create(path)?);
        let header = serde_json::json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            "title": title,
            "env": { "TERM": "xterm-256color" },
        });
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        Ok(Cast {
            out,
            t0: Instant::now(),
            partial: Vec::new(),
        })
    }

    /// One output event: `bytes` written to the screen now.
    pub fn frame(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.partial.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Not UTF-8 at all: written as replacement characters.
            Err(_) => self.partial.len(),
        };
        if valid == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.partial[..valid]).into_owned();
        self.partial.drain(..valid);
        let t = self.t0.elapsed().as_secs_f64();
        serde_json::to_writer(&mut self.out, &serde_json::json!([t, "o", text]))?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_then_events_with_rising_times_and_whole_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.cast");
        let mut c = Cast::create(&path, 80, 24, "t").unwrap();
        let bar = "█".as_bytes();
        c.frame(&[b"\x1b[1;1H".as_slice(), &bar[..1]].concat())
            .unwrap();
        c.frame(&bar[1..]).unwrap();
        drop(c);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(header["version"], 2);
        assert_eq!(header["width"], 80);
        let events: Vec<serde_json::Value> =
            lines.map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0][1], "o");
        assert_eq!(events[0][2], "\u{1b}[1;1H");
        assert_eq!(events[1][2], "█");
        assert!(events[1][0].as_f64().unwrap() >= events[0][0].as_f64().unwrap());
    }
}
