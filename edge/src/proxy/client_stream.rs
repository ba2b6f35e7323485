//! The client's TCP connection, which a `reset` fault can abort: once
//! [`Abort::trip`] is called, the next read or write fails and the socket is
//! set to `SO_LINGER 0`, so when hyper drops the connection the kernel sends
//! an RST — the client sees "connection reset by peer" and no response, as
//! behind a middlebox that kills the connection (Toxiproxy's `reset_peer`).
//! It also gives hyper first what the HTTP/1.1 path had read before it
//! handed the connection over.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The switch a request handler trips to reset its client's connection.
#[derive(Debug, Default)]
pub(super) struct Abort(AtomicBool);

impl Abort {
    /// Reset the connection instead of writing anything more on it.
    pub(super) fn trip(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn tripped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A client connection that fails every operation once its [`Abort`] trips.
pub(super) struct ClientStream {
    stream: TcpStream,
    abort: Arc<Abort>,
    /// Read from the socket already; read from here first.
    read: Vec<u8>,
    /// How much of `read` has been handed out.
    used: usize,
}

impl ClientStream {
    pub(super) fn new(stream: TcpStream, abort: Arc<Abort>, read: Vec<u8>) -> Self {
        ClientStream {
            stream,
            abort,
            read,
            used: 0,
        }
    }

    /// `Some(error)` once tripped: the socket will close with an RST.
    fn reset(&self) -> Option<io::Error> {
        if !self.abort.tripped() {
            return None;
        }
        if let Err(e) = self.stream.set_zero_linger() {
            tracing::debug!(error = %e, "SO_LINGER 0 failed; the close will be a FIN");
        }
        Some(io::ErrorKind::ConnectionReset.into())
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.reset() {
            return Poll::Ready(Err(e));
        }
        let this = self.get_mut();
        if this.used < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.used);
            buf.put_slice(&this.read[this.used..this.used + n]);
            this.used += n;
            if this.used == this.read.len() {
                this.read = Vec::new();
                this.used = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.reset() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.reset() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.reset() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.reset() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
