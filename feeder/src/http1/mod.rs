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
//!
//! [`wire`] holds the encoding and parsing; this module the connection.

pub mod wire;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::{default_headers, parse_hex};
pub use wire::{encode, encode_with, parse_head, Body, Head, Request, JSON_CONTENT_TYPE};

/// Longest reply head accepted; a longer one is a broken server.
const MAX_HEAD: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

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
    /// The reply body, when [`Conn::read_body`] keeps it.
    body: Vec<u8>,
    /// While a body is kept: the most bytes kept; the rest is only read.
    keep: Option<usize>,
    /// The kept body hit the limit: it is incomplete.
    overflow: bool,
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

impl Conn {
    /// A connection dialled ahead of its first request, so that request does
    /// not also pay for the connect.
    pub async fn open(host: &str, port: u16) -> Result<Conn, Fail> {
        Ok(Conn {
            stream: Some(dial(host, port).await?),
            ..Conn::default()
        })
    }

    /// Sends `req` (a body as JSON) and reads the reply head; the body is
    /// then drained by [`Conn::drain`]. A reused connection the server has
    /// already closed is noticed before the request is written (or when
    /// writing fails), and a fresh one is dialled.
    pub async fn send(
        &mut self,
        host: &str,
        port: u16,
        instance_header: &str,
        req: &Request<'_>,
    ) -> Result<(Head, Body), Fail> {
        self.send_with(host, port, instance_header, req, default_headers(req))
            .await
    }

    /// [`Conn::send`] with the caller's header lines (`name: value\r\n`
    /// each, its `Content-Type` included) in place of the default.
    pub async fn send_with(
        &mut self,
        host: &str,
        port: u16,
        instance_header: &str,
        req: &Request<'_>,
        headers: &[u8],
    ) -> Result<(Head, Body), Fail> {
        // A body read abandoned by a timeout must not leave keeping on.
        self.keep = None;
        encode_with(&mut self.out, req, headers);
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

    /// Reads the reply body like [`Conn::drain`] and keeps it: `None` when
    /// it is longer than `limit` (then it is read to its end and dropped).
    pub async fn read_body(
        &mut self,
        body: Body,
        close: bool,
        limit: usize,
    ) -> Result<Option<&[u8]>, Fail> {
        self.body.clear();
        self.overflow = false;
        self.keep = Some(limit);
        let drained = self.drain(body, close).await;
        self.keep = None;
        drained?;
        Ok((!self.overflow).then_some(&self.body[..]))
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
                    self.consume(self.end - self.start);
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
            self.skip(stream, size).await?;
            // The chunk's CRLF is framing, never body.
            let keep = self.keep.take();
            self.skip(stream, 2).await?;
            self.keep = keep;
        }
    }

    /// Consumes the next `n` bytes, reading as many as that takes.
    async fn skip(&mut self, stream: &mut TcpStream, mut n: u64) -> Result<(), Fail> {
        loop {
            let have = (self.end - self.start) as u64;
            if have >= n {
                self.consume(n as usize);
                return Ok(());
            }
            n -= have;
            self.consume(self.end - self.start);
            self.fill(stream).await?;
        }
    }

    /// Consumes `n` buffered body bytes, keeping them when a body is kept.
    fn consume(&mut self, n: usize) {
        if let Some(limit) = self.keep {
            if self.body.len() + n <= limit {
                self.body
                    .extend_from_slice(&self.buf[self.start..self.start + n]);
            } else {
                self.overflow = true;
            }
        }
        self.start += n;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::task::JoinHandle;

    const GET: Request<'static> = Request {
        method: "GET",
        path_and_query: "/",
        host: b"h",
        user_agent: "t",
        body: None,
    };

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

    /// A server on 127.0.0.1:0 answering the requests of one connection
    /// with `replies`, in order.
    async fn one_connection(replies: &'static [&'static [u8]]) -> (u16, JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for reply in replies {
                assert!(s.read(&mut buf).await.unwrap() > 0);
                s.write_all(reply).await.unwrap();
            }
        });
        (port, server)
    }

    /// Bodies kept for `instance_json`: sized, chunked (without the chunk
    /// framing) and until-close; one beyond the limit is read but not kept,
    /// and the connection still carries the next request.
    #[tokio::test]
    async fn read_body_keeps_whole_bodies_up_to_the_limit() {
        let (port, server) = one_connection(&[
            b"HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\n{\"instance\":\"a\"}",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"in\r\nc\r\nstance\":\"b\"}\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 38\r\n\r\n{\"instance\":\"this body is over limit\"}",
            b"HTTP/1.0 201 Created\r\n\r\n{\"instance\":7}",
        ])
        .await;
        let mut conn = Conn::default();
        let mut bodies = Vec::new();
        let limit = std::time::Duration::from_secs(10);
        tokio::time::timeout(limit, async {
            for _ in 0..4 {
                let (head, body) = conn.send("127.0.0.1", port, "x", &GET).await.unwrap();
                let kept = conn.read_body(body, head.close, 20).await.unwrap();
                bodies.push(kept.map(|b| String::from_utf8(b.to_vec()).unwrap()));
            }
        })
        .await
        .expect("every reply read in time");
        assert_eq!(
            bodies,
            vec![
                Some(r#"{"instance":"a"}"#.to_string()),
                Some(r#"{"instance":"b"}"#.to_string()),
                None,
                Some(r#"{"instance":7}"#.to_string()),
            ]
        );
        server.await.unwrap();
    }
}
