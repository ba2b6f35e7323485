//! Line-oriented listings (NDJSON over HTTP, a command's output) arrive in
//! chunks that ignore line ends. [`Lines`] joins the pieces of a line that
//! straddles chunks and hands out whole lines; [`pump`] receives the chunks
//! on the runtime while a blocking thread parses them into the ledger, so
//! receiving and parsing overlap and memory stays at a few chunks, whatever
//! the listing's size.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::reconcile::ledger::Ledger;

/// A line longer than this is refused rather than buffered.
pub const MAX_LINE: usize = 1 << 20;

/// Why a line could not be taken.
#[derive(Debug)]
pub enum LineError<E> {
    /// Line `line` grew past [`MAX_LINE`] without ending.
    TooLong { line: u64 },
    /// The parser refused line `line`.
    Bad { line: u64, error: E },
}

/// Only whitespace: skipped, though counted.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Splits chunks into lines; numbers them from 1, blank lines included.
/// A line is handed out without its `\n` or `\r\n`, otherwise as it came
/// (a tab that separates fields stays).
#[derive(Debug)]
pub struct Lines {
    pending: Vec<u8>,
    line_no: u64,
    taken: u64,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            pending: Vec::with_capacity(64 * 1024),
            line_no: 0,
            taken: 0,
        }
    }
}

impl Lines {
    /// Non-blank lines handed out so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Calls `each` with every line `chunk` completes (blank ones skipped);
    /// keeps the unfinished rest for the next chunk.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        each: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), LineError<E>> {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.line_no += 1;
            if self.pending.is_empty() {
                self.take(&rest[..nl], each)?;
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(&rest[..nl]);
                self.take(&line, each)?;
                line.clear();
                self.pending = line;
            }
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_LINE {
            return Err(LineError::TooLong {
                line: self.line_no + 1,
            });
        }
        Ok(())
    }

    /// The last line, which may lack its newline.
    pub fn finish<E>(
        &mut self,
        each: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), LineError<E>> {
        self.line_no += 1;
        let last = std::mem::take(&mut self.pending);
        self.take(&last, each)
    }

    fn take<E>(
        &mut self,
        line: &[u8],
        each: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), LineError<E>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_blank(line) {
            return Ok(());
        }
        each(line).map_err(|error| LineError::Bad {
            line: self.line_no,
            error,
        })?;
        self.taken += 1;
        Ok(())
    }
}

/// Why [`pump`] stopped early.
#[derive(Debug)]
pub enum PumpError<E> {
    /// No chunk for the idle timeout.
    Idle(Duration),
    /// The stream itself failed (connection reset, read error).
    Broke(String),
    Line(LineError<E>),
    Internal(String),
}

/// Feeds every line of `chunks` to `parse` on a blocking thread, which
/// writes into `ledger`; returns the ledger and the lines taken. A chunk
/// must arrive within `idle` of the previous one.
pub async fn pump<S, F, E>(
    mut chunks: S,
    idle: Duration,
    ledger: Ledger,
    mut parse: F,
) -> Result<(Ledger, u64), PumpError<E>>
where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
    F: FnMut(&[u8], &mut Ledger) -> Result<(), E> + Send + 'static,
    E: Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    let parser = tokio::task::spawn_blocking(move || {
        let mut ledger = ledger;
        let mut lines = Lines::default();
        let mut each = |line: &[u8]| parse(line, &mut ledger);
        while let Some(chunk) = rx.blocking_recv() {
            lines.feed(&chunk, &mut each)?;
        }
        lines.finish(&mut each)?;
        let taken = lines.taken();
        Ok((ledger, taken))
    });
    let received: Result<(), PumpError<E>> = loop {
        let chunk = match tokio::time::timeout(idle, chunks.next()).await {
            Err(_) => break Err(PumpError::Idle(idle)),
            Ok(None) => break Ok(()),
            Ok(Some(Err(reason))) => break Err(PumpError::Broke(reason)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        // A closed channel means the parser stopped on a bad line: its
        // error is the one to report.
        if tx.send(chunk).await.is_err() {
            break Ok(());
        }
    };
    drop(tx);
    let parsed = parser
        .await
        .map_err(|e| PumpError::Internal(format!("listing parser task: {e}")))?;
    received?;
    parsed.map_err(PumpError::Line)
}

/// Reads `chunks` up to the end of the first non-blank line (or the end of
/// the stream) and returns that line, as [`Lines`] would hand it out; the
/// rest is left unread. For checks
/// that must not read a whole listing.
/// (Its error is typed like the caller's [`pump`]'s; it is never a bad line.)
pub async fn first_line<S, E>(
    mut chunks: S,
    idle: Duration,
) -> Result<Option<Vec<u8>>, PumpError<E>>
where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
{
    let mut head = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(idle, chunks.next()).await {
            Err(_) => return Err(PumpError::Idle(idle)),
            Ok(None) => break,
            Ok(Some(Err(reason))) => return Err(PumpError::Broke(reason)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        head.extend_from_slice(&chunk);
        // Done once a line with something on it has ended.
        let text = head.iter().position(|b| !b.is_ascii_whitespace());
        if text.is_some_and(|at| head[at..].contains(&b'\n')) {
            break;
        }
        if head.len() > MAX_LINE {
            return Err(PumpError::Line(LineError::TooLong { line: 1 }));
        }
    }
    Ok(head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !is_blank(l))
        .map(<[u8]>::to_vec))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn collect(body: &[u8], size: usize) -> Result<Vec<String>, LineError<String>> {
        let mut got = Vec::new();
        let mut each = |l: &[u8]| -> Result<(), String> {
            let s = std::str::from_utf8(l).unwrap();
            if s == "bad" {
                return Err("bad line".into());
            }
            got.push(s.to_string());
            Ok(())
        };
        let mut lines = Lines::default();
        for chunk in body.chunks(size) {
            lines.feed(chunk, &mut each)?;
        }
        lines.finish(&mut each)?;
        Ok(got)
    }

    #[test]
    fn lines_straddling_chunks_are_joined_and_counted() {
        let body = b"alpha\r\n\n \t\r\n  beta\tx \ngamma";
        for size in [1, 2, 3, 7, body.len()] {
            assert_eq!(
                collect(body, size).unwrap(),
                ["alpha", "  beta\tx ", "gamma"],
                "chunk size {size}"
            );
        }
        match collect(b"a\n\nbad\r\nc\n", 2) {
            Err(LineError::Bad { line: 3, error }) => assert_eq!(error, "bad line"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_endless_line_is_refused() {
        let body = vec![b'x'; MAX_LINE + 2];
        assert!(matches!(
            collect(&body, 64 * 1024),
            Err(LineError::TooLong { line: 1 })
        ));
    }

    #[tokio::test]
    async fn pump_reports_the_stream_break_and_the_idle_stall() {
        let ledger = || crate::reconcile::ledger::AckIndex::new().seal();
        let parse = |_: &[u8], _: &mut Ledger| -> Result<(), String> { Ok(()) };
        let ok = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"a\nb")),
            Ok(Bytes::from_static(b"\nc\n")),
        ]);
        let (_, n) = pump(ok, Duration::from_secs(5), ledger(), parse)
            .await
            .unwrap();
        assert_eq!(n, 3);
        let broken = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"a\n")),
            Err("reset".to_string()),
        ]);
        let Err(err) = pump(broken, Duration::from_secs(5), ledger(), parse).await else {
            panic!("a broken stream read to the end")
        };
        assert!(
            matches!(err, PumpError::Broke(ref r) if r == "reset"),
            "{err:?}"
        );
        let stalled = futures::stream::pending::<Result<Bytes, String>>();
        let Err(err) = pump(stalled, Duration::from_millis(50), ledger(), parse).await else {
            panic!("a stalled stream read to the end")
        };
        assert!(matches!(err, PumpError::Idle(_)), "{err:?}");
    }

    #[tokio::test]
    async fn the_first_line_is_read_alone() {
        let chunks = |parts: Vec<&'static [u8]>| {
            futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
                .chain(futures::stream::pending())
        };
        let idle = Duration::from_millis(200);
        let got = first_line::<_, ()>(
            chunks(vec![b"\n  \n", b"{\"id\"", b":1}\n{\"id\":2}"]),
            idle,
        )
        .await
        .unwrap();
        assert_eq!(got.as_deref(), Some(&b"{\"id\":1}"[..]));
        let empty = futures::stream::iter(vec![Ok(Bytes::from_static(b"\n"))]);
        assert_eq!(first_line::<_, ()>(empty, idle).await.unwrap(), None);
        let last = futures::stream::iter(vec![Ok(Bytes::from_static(b"only"))]);
        assert_eq!(
            first_line::<_, ()>(last, idle).await.unwrap().as_deref(),
            Some(&b"only"[..])
        );
    }
}
