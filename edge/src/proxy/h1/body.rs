//! Where a response body ends on the HTTP/1.1 path. The body is passed on
//! as the origin framed it (a chunked body stays chunked), so the edge only
//! has to find its end: a length counted down, a chunked body scanned for its
//! last chunk and trailers, or the origin closing the connection.

/// How the body of one response is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (a HEAD request, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, scanned as it passes.
    Chunked(Chunked),
    /// No length: the body ends when the origin closes the connection.
    UntilClose,
}

impl Framing {
    pub(super) fn chunked() -> Framing {
        Framing::Chunked(Chunked::default())
    }

    /// How many of `bytes` (the next bytes of the body) belong to it, and
    /// whether the body ends with them. `UntilClose` never ends here.
    pub(super) fn take(&mut self, bytes: &[u8]) -> Result<(usize, bool), BadChunk> {
        match self {
            Framing::Empty => Ok((0, true)),
            Framing::Length(left) => {
                let n = (*left).min(bytes.len() as u64);
                *left -= n;
                Ok((n as usize, *left == 0))
            }
            Framing::Chunked(c) => c.scan(bytes),
            Framing::UntilClose => Ok((bytes.len(), false)),
        }
    }
}

/// The origin's chunked body does not follow RFC 9112 (the client's
/// connection is closed, as hyper would).
#[derive(Debug, thiserror::Error)]
#[error("malformed chunked body from the origin")]
pub(super) struct BadChunk;

/// Where a chunked body's scan stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Chunked {
    state: State,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum State {
    /// At the start of a chunk-size line.
    #[default]
    Size,
    /// In its hex digits: the size so far.
    SizeDigits(u64),
    /// In a chunk extension, up to the line's end.
    Extension(u64),
    /// After the size line's CR.
    SizeLf(u64),
    /// In a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: CR LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line (after the last chunk).
    TrailerStart,
    /// In a trailer field line.
    Trailer,
    /// After the final empty line's CR.
    EndLf,
    Done,
}

impl Chunked {
    /// How many of `bytes` belong to the body, and whether it ended there.
    fn scan(&mut self, bytes: &[u8]) -> Result<(usize, bool), BadChunk> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Done {
                break;
            }
            if let State::Data(left) = self.state {
                let n = left.min((bytes.len() - i) as u64);
                i += n as usize;
                self.state = if left == n {
                    State::DataCr
                } else {
                    State::Data(left - n)
                };
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.state = match (&self.state, b) {
                (State::Size, b) => State::SizeDigits(hex(b).ok_or(BadChunk)?),
                (State::SizeDigits(n), b) if hex(b).is_some() => {
                    let d = hex(b).ok_or(BadChunk)?;
                    State::SizeDigits(n.checked_mul(16).ok_or(BadChunk)? + d)
                }
                (State::SizeDigits(n), b';' | b' ' | b'\t') => State::Extension(*n),
                (State::SizeDigits(n) | State::Extension(n), b'\r') => State::SizeLf(*n),
                (State::SizeDigits(n) | State::Extension(n) | State::SizeLf(n), b'\n') => {
                    if *n == 0 {
                        State::TrailerStart
                    } else {
                        State::Data(*n)
                    }
                }
                (State::Extension(n), _) => State::Extension(*n),
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataCr | State::DataLf, b'\n') => State::Size,
                (State::TrailerStart, b'\r') => State::EndLf,
                (State::TrailerStart | State::EndLf, b'\n') => State::Done,
                (State::Trailer, b'\n') => State::TrailerStart,
                (State::TrailerStart | State::Trailer, _) => State::Trailer,
                _ => return Err(BadChunk),
            };
        }
        Ok((i, self.state == State::Done))
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `step` bytes; returns where it ended.
    fn end_of(body: &[u8], step: usize) -> Option<usize> {
        let mut f = Framing::chunked();
        let mut at = 0;
        for piece in body.chunks(step) {
            let (n, done) = f.take(piece).unwrap();
            at += n;
            if done {
                return Some(at);
            }
            assert_eq!(n, piece.len());
        }
        None
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_and_trailers_however_it_is_split() {
        let body =
            b"5\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..body.len() {
            assert_eq!(end_of(body, step), Some(body.len() - 4), "step {step}");
        }
        assert_eq!(end_of(b"0\r\n\r\n", 100), Some(5));
        assert_eq!(end_of(b"3\r\nabc\r\n", 100), None);
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [&b"x\r\n"[..], b"3\r\nabcX", b"FFFFFFFFFFFFFFFFFF\r\n"] {
            assert!(Framing::chunked().take(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_length_counts_down() {
        let mut f = Framing::Length(5);
        assert_eq!(f.take(b"abc").unwrap(), (3, false));
        assert_eq!(f.take(b"defg").unwrap(), (2, true));
        assert_eq!(Framing::Empty.take(b"x").unwrap(), (0, true));
    }
}
