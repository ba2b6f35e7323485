//! A minimal HTTP/1.1 client connection for the load path: the request is
//! written with one `write`, the reply read into a reused buffer and parsed
//! in place.
//!
//! hyper's client connection runs its own task and hands every request and
//! reply across channels (two task wake-ups and several allocations per
//! request); at tens of thousands of requests per second that was the
//! feeder's largest avoidable cost (`scripts/bench-feeder.sh`). Only what a
//! load generator needs: `Content-Length` and chunked bodies, bodies
//! delimited by the connection's end, 1xx interim replies skipped.

use handover_contract::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest reply head accepted; a longer one is a broken server.
const MAX_HEAD: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// What the status line and headers said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub instance: Option<String>,
    /// The server closes the connection after this reply.
    pub close: bool,
}

/// A keep-alive connection with its buffers (kept across re-dials).
#[derive(Debug, Default)]
pub struct Conn {
    stream: Option<TcpStream>,
    /// The request being written.
    out: Vec<u8>,
    /// Reply bytes read; `start..end` not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Fail {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed before a complete reply")]
    Closed,
    #[error("bad reply: {0}")]
    Bad(&'static str),
}

/// The parts of a request that stay the same for a run.
pub struct Request<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub host: &'a [u8],
    pub user_agent: &'a str,
    pub body: Option<&'a [u8]>,
}

impl Conn {
    /// Sends `req` and reads the reply head; the body is then drained by
    /// [`Conn::drain`]. A reused connection the server has already closed is
    /// noticed before the request is written (or when writing fails), and a
    /// fresh one is dialled.
    pub async fn send(
        &mut self,
        host: &str,
        port: u16,
        instance_header: &str,
        req: &Request<'_>,
    ) -> Result<(Head, Body), Fail> {
        encode(&mut self.out, req);
        let (mut stream, reused) = match self.stream.take() {
            Some(s) if self.start == self.end && still_open(&s) => (s, true),
            _ => (dial(host, port).await?, false),
        };
        self.start = 0;
        self.end = 0;
        if let Err(e) = stream.write_all(&self.out).await {
            if !reused {
                return Err(e.into());
            }
            // The server closed the kept connection between the peek and the
            // write: the request did not go out whole, so no server acted on
            // it. Send it once more on a fresh connection, as hyper does.
            stream = dial(host, port).await?;
            stream.write_all(&self.out).await?;
        }
        let head_only = req.method == "HEAD";
        loop {
            let (head, body, used) = loop {
                if let Some(parsed) =
                    parse_head(&self.buf[self.start..self.end], instance_header, head_only)?
                {
                    break parsed;
                }
                if self.end - self.start >= MAX_HEAD {
                    return Err(Fail::Bad("reply head too long"));
                }
                self.fill(&mut stream).await?;
            };
            self.start += used;
            if (100..200).contains(&head.status) {
                continue;
            }
            self.stream = Some(stream);
            return Ok((head, body));
        }
    }

    /// Reads the rest of the reply so the connection can carry the next
    /// request; the connection is kept only when that succeeded.
    pub async fn drain(&mut self, body: Body, close: bool) -> Result<(), Fail> {
        let Some(mut stream) = self.stream.take() else {
            return Err(Fail::Closed);
        };
        let keep = match body {
            Body::Length(n) => {
                self.skip(&mut stream, n).await?;
                true
            }
            Body::Chunked => {
                self.drain_chunked(&mut stream).await?;
                true
            }
            Body::UntilClose => {
                loop {
                    self.start = self.end;
                    if self.fill(&mut stream).await.is_err() {
                        break;
                    }
                }
                false
            }
        };
        // Bytes beyond the reply (the server spoke out of turn) make the
        // connection unusable.
        if keep && !close && self.start == self.end {
            self.stream = Some(stream);
        }
        Ok(())
    }

    async fn drain_chunked(&mut self, stream: &mut TcpStream) -> Result<(), Fail> {
        loop {
            let line = self.line(stream).await?;
            let size_hex = line.split(|b| *b == b';').next().unwrap_or_default();
            let size = parse_hex(size_hex).ok_or(Fail::Bad("bad chunk size"))?;
            if size == 0 {
                // Trailers up to the empty line.
                while !self.line(stream).await?.is_empty() {}
                return Ok(());
            }
            // The chunk and its CRLF.
            self.skip(stream, size + 2).await?;
        }
    }

    /// Consumes the next `n` bytes, reading as many as that takes.
    async fn skip(&mut self, stream: &mut TcpStream, mut n: u64) -> Result<(), Fail> {
        loop {
            let have = (self.end - self.start) as u64;
            if have >= n {
                self.start += n as usize;
                return Ok(());
            }
            n -= have;
            self.start = self.end;
            self.fill(stream).await?;
        }
    }

    /// The next CRLF-terminated line (without the CRLF), consumed.
    async fn line(&mut self, stream: &mut TcpStream) -> Result<Vec<u8>, Fail> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(i) = avail.windows(2).position(|w| w == b"\r\n") {
                let line = avail[..i].to_vec();
                self.start += i + 2;
                return Ok(line);
            }
            if avail.len() >= MAX_HEAD {
                return Err(Fail::Bad("line too long"));
            }
            self.fill(stream).await?;
        }
    }

    /// Reads more bytes after `end`, compacting the buffer first.
    async fn fill(&mut self, stream: &mut TcpStream) -> Result<(), Fail> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < READ_CHUNK / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 2 {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        let n = stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(Fail::Closed);
        }
        self.end += n;
        Ok(())
    }
}

/// How the reply body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Whether a kept connection is still usable: the server has not closed it
/// and sent nothing unasked (a non-blocking peek, no waiting).
fn still_open(s: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn dial(host: &str, port: u16) -> Result<TcpStream, Fail> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|source| Fail::Connect {
            addr: format!("{host}:{port}"),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The whole request into `out` (reused): one write on the socket.
pub fn encode(out: &mut Vec<u8>, req: &Request<'_>) {
    out.clear();
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(req.host);
    out.extend_from_slice(b"\r\nuser-agent: ");
    out.extend_from_slice(req.user_agent.as_bytes());
    match req.body {
        Some(body) => {
            out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
            json::push_u64(out, body.len() as u64);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"\r\n\r\n"),
    }
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, b| {
        let d = (*b as char).to_digit(16)?;
        Some(acc * 16 + u64::from(d))
    })
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Where the blank line ending the head starts: scans for `\n` only and
/// looks back, cheaper than comparing every 4-byte window.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 3;
    while from < buf.len() {
        let i = from + buf[from..].iter().position(|b| *b == b'\n')?;
        if &buf[i - 3..=i] == b"\r\n\r\n" {
            return Some(i - 3);
        }
        from = i + 1;
    }
    None
}

/// Parses a complete reply head from the start of `buf`: `None` while it is
/// incomplete, else the head, how its body ends and the bytes it took.
pub fn parse_head(
    buf: &[u8],
    instance_header: &str,
    head_only: bool,
) -> Result<Option<(Head, Body, usize)>, Fail> {
    let Some(end) = head_end(buf) else {
        return Ok(None);
    };
    let mut lines = buf[..end]
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii_end());
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 {
        return Err(Fail::Bad("not an HTTP/1 status line"));
    }
    let status = parse_decimal(&status_line[9..12])
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or(Fail::Bad("bad status code"))?;
    let mut head = Head {
        status,
        instance: None,
        close: false,
    };
    let mut length = None;
    let mut chunked = false;
    let mut close = status_line.starts_with(b"HTTP/1.0");
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Err(Fail::Bad("header without a colon"));
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(parse_decimal(value).ok_or(Fail::Bad("bad content-length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        } else if head.instance.is_none() && name.eq_ignore_ascii_case(instance_header.as_bytes()) {
            head.instance = std::str::from_utf8(value).ok().map(str::to_string);
        }
    }
    let body = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Body::Length(0)
    } else if chunked {
        Body::Chunked
    } else {
        match length {
            Some(n) => Body::Length(n),
            None => Body::UntilClose,
        }
    };
    head.close = close;
    Ok(Some((head, body, end + 4)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_whole_request() {
        let mut out = Vec::new();
        encode(
            &mut out,
            &Request {
                method: "POST",
                path_and_query: "/orders",
                host: b"shop:8080",
                user_agent: "ua/1",
                body: Some(b"{}"),
            },
        );
        assert_eq!(
            out,
            b"POST /orders HTTP/1.1\r\nhost: shop:8080\r\nuser-agent: ua/1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn parses_heads_and_their_body_framing() {
        let r =
            b"HTTP/1.1 201 Created\r\nX-Instance: b\r\ncontent-length: 12\r\n\r\n{\"ok\":true}x";
        let (head, body, used) = parse_head(r, "x-instance", false).unwrap().unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(head.instance.as_deref(), Some("b"));
        assert_eq!(body, Body::Length(12));
        assert_eq!(&r[used..], b"{\"ok\":true}x");
        let c = b"HTTP/1.1 500 x\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(
            parse_head(c, "x-instance", false).unwrap().unwrap().1,
            Body::Chunked
        );
        let n = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            parse_head(n, "x-instance", false).unwrap().unwrap().1,
            Body::UntilClose
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n", "x", false)
            .unwrap()
            .is_none());
        assert!(parse_head(b"SSH-2.0\r\n\r\n", "x", false).is_err());
        assert_eq!(head_end(b"a\r\n\r\nb"), Some(1));
        assert_eq!(head_end(b"\r\n\r\n"), Some(0));
        assert_eq!(head_end(b"\n\n\r\n\n\r\r\n"), None);
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n", "x", false).is_err());
    }

    /// Chunked, then length-delimited, on one kept connection; then a reply
    /// that ends the connection, after which the next request re-dials.
    #[tokio::test]
    async fn reads_chunked_and_sized_bodies_and_redials_after_close() {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let replies: [&[u8]; 3] = [
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-instance: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\nx-instance: a\r\n\r\nnope!",
                b"HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            ];
            let mut accepted = 0;
            let mut served = 0;
            while served < 4 {
                let (mut s, _) = listener.accept().await.unwrap();
                accepted += 1;
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    assert!(buf[..n].starts_with(b"GET /p HTTP/1.1\r\nhost: h\r\n"));
                    s.write_all(replies[served.min(2)]).await.unwrap();
                    served += 1;
                    if served >= 3 {
                        break;
                    }
                }
            }
            accepted
        });
        let req = Request {
            method: "GET",
            path_and_query: "/p",
            host: b"h",
            user_agent: "t",
            body: None,
        };
        let mut conn = Conn::default();
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let (head, body) = conn
                .send("127.0.0.1", port, "x-instance", &req)
                .await
                .unwrap();
            statuses.push((head.status, head.instance.clone()));
            conn.drain(body, head.close).await.unwrap();
        }
        assert_eq!(
            statuses,
            vec![
                (200, Some("a".into())),
                (404, Some("a".into())),
                (503, None),
                (503, None)
            ]
        );
        assert_eq!(server.await.unwrap(), 2);
    }
}
