//! Connections to origins: connect with a deadline, and a keep-alive pool of
//! idle HTTP/1.1 connections per origin address. Two kinds of connection go
//! in a pool: [`Stream`], the bare socket the proxy's own HTTP/1.1 path
//! (`proxy::h1`) reads and writes, and hyper's [`Sender`] for the requests
//! that path hands to hyper.
//!
//! The pool only saves connection setup. Which origin a request goes to is
//! decided by the proxy (routing and stickiness) before the pool is asked.
//! A black-holed origin (see [`crate::origin_faults`]) gets no pooled
//! connection, and a connect to it stalls until the connect timeout.

use crate::metrics::Metrics;
use crate::origin_faults::OriginFaults;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The body of a forwarded request: the client's, or an empty one for a replay.
pub type Body = http_body_util::Either<hyper::body::Incoming, http_body_util::Full<bytes::Bytes>>;

pub type Sender = SendRequest<Body>;

/// An HTTP/1.1 connection to an origin, as the pool keeps it.
pub trait OriginConn: Sized + Send + std::fmt::Debug + 'static {
    /// The origin closed it.
    fn is_closed(&mut self) -> bool;
    /// It can take a request now (idle and open).
    fn is_ready(&mut self) -> bool {
        !self.is_closed()
    }
    /// The HTTP handshake on a new TCP connection.
    fn handshake(
        stream: TcpStream,
        origin: SocketAddr,
    ) -> impl Future<Output = Result<Self, ConnectError>> + Send;
}

impl OriginConn for Sender {
    fn is_closed(&mut self) -> bool {
        SendRequest::is_closed(self)
    }

    fn is_ready(&mut self) -> bool {
        SendRequest::is_ready(self)
    }

    async fn handshake(stream: TcpStream, origin: SocketAddr) -> Result<Self, ConnectError> {
        // Flat writes, as on the client side (see `proxy::serve_connection`).
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ConnectError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%origin, error = %e, "origin connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// A bare origin connection and what has been read from it but not yet
/// used (the proxy's HTTP/1.1 path parses responses out of `buf`).
#[derive(Debug)]
pub struct Stream {
    pub io: TcpStream,
    pub buf: Vec<u8>,
}

impl OriginConn for Stream {
    /// Nobody reads an idle connection, so the origin closing it shows only
    /// as readiness: a connection that is not readable is open (no syscall);
    /// one that is gets a non-blocking read, where end of file, an error or
    /// unasked-for bytes all mean it cannot carry a request.
    fn is_closed(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                !matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }

    async fn handshake(stream: TcpStream, _origin: SocketAddr) -> Result<Self, ConnectError> {
        Ok(Stream {
            io: stream,
            buf: Vec::with_capacity(STREAM_BUF),
        })
    }
}

/// A [`Stream`]'s buffer to begin with.
const STREAM_BUF: usize = 16 * 1024;

/// Why no connection to the origin could be made; decides 521/522/523.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("origin refused the connection")]
    Refused,
    #[error("connecting to the origin timed out")]
    Timeout,
    #[error("origin unreachable: {0}")]
    Unreachable(std::io::Error),
    #[error("HTTP handshake with the origin failed: {0}")]
    Handshake(hyper::Error),
}

/// Idle connections older than this are closed rather than reused.
const POOL_IDLE_MAX: Duration = Duration::from_secs(60);
/// Idle connections kept per origin.
const POOL_PER_ORIGIN: usize = 512;

#[derive(Debug)]
pub struct Pool<C> {
    idle: Mutex<HashMap<SocketAddr, Vec<(C, Instant)>>>,
    connect_timeout: Duration,
    metrics: Arc<Metrics>,
    faults: Arc<OriginFaults>,
}

impl<C: OriginConn> Pool<C> {
    pub fn new(
        connect_timeout: Duration,
        metrics: Arc<Metrics>,
        faults: Arc<OriginFaults>,
    ) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            connect_timeout,
            metrics,
            faults,
        }
    }

    /// An empty pool with the same settings (one per proxy thread).
    pub fn fresh(&self) -> Pool<C> {
        Pool::new(
            self.connect_timeout,
            Arc::clone(&self.metrics),
            Arc::clone(&self.faults),
        )
    }

    /// An idle pooled connection to `origin` (true: reused), or a new one.
    pub async fn get(&self, origin: SocketAddr) -> Result<(C, bool), ConnectError> {
        if self.faults.blackholed(origin.ip()) {
            return Ok((self.connect(origin).await?, false));
        }
        if let Some(s) = self.checkout(origin) {
            return Ok((s, true));
        }
        Ok((self.connect(origin).await?, false))
    }

    fn checkout(&self, origin: SocketAddr) -> Option<C> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(&origin)?;
        while let Some((mut conn, since)) = list.pop() {
            if conn.is_ready() && since.elapsed() < POOL_IDLE_MAX {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection for reuse by other client connections.
    pub fn put(&self, origin: SocketAddr, mut conn: C) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(origin).or_default();
        list.retain_mut(|(c, since)| !c.is_closed() && since.elapsed() < POOL_IDLE_MAX);
        if list.len() < POOL_PER_ORIGIN {
            list.push((conn, Instant::now()));
        }
    }

    /// A fresh connection, never from the pool.
    pub async fn connect(&self, origin: SocketAddr) -> Result<C, ConnectError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        if !self.faults.connect_allowed(origin.ip(), deadline).await {
            return Err(ConnectError::Timeout);
        }
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(origin)).await {
            Err(_) => return Err(ConnectError::Timeout),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(ConnectError::Refused)
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ConnectError::Timeout)
            }
            Ok(Err(e)) => return Err(ConnectError::Unreachable(e)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let conn = C::handshake(stream, origin).await?;
        self.metrics.origin_connected();
        Ok(conn)
    }
}
