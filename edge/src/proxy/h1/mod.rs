//! The proxy's own HTTP/1.1 path: one task per client connection reads a
//! request, writes it rewritten to a bare origin connection, and passes the
//! response back as the origin framed it.
//!
//! Through hyper (a server connection, a client connection, their two tasks
//! and the header maps between them) a request cost the edge 12.1 µs of CPU
//! against HAProxy's 10.3 µs, and the hop kept 42–46 % of the direct rate
//! (issue 15, docs/benchmarks.md). This path reads and writes the same four
//! times per request and does little else.
//!
//! It carries the plain case: HTTP/1.1, a Host, no body or a
//! `Content-Length` one up to 64 KiB. Anything else — HTTP/1.0, chunked or
//! `Expect` uploads, upgrades, absolute URIs, `Connection`-listed headers,
//! malformed heads — hands the connection, with what was read, to hyper
//! (`Outcome::Handover`), which serves or refuses it as it always has.
//! Routing, stickiness, faults, the keep-alive race and the edge's own pages
//! are the same rules as on the hyper path, on [`Stream`] connections.

mod body;
mod head;

use super::error_page::EdgeError;
use super::forward::Failure;
use super::headers::Peer;
use super::sticky::{ClientConn, Held, Ride, Turn};
use super::{routing, Proxy};
use crate::origin_faults::ResetWatch;
use crate::routes::{RouteCache, Viewer};
use crate::upstream::{OriginConn, Pool, Stream};
use body::Framing;
use head::{Parsed, RequestHead, ResponseHead};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request head must arrive within this once it has begun (hyper's
/// default, the slowloris guard); an idle keep-alive connection has no limit.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How the path left a client connection.
pub(super) enum Outcome {
    /// Closed (or to be closed): by the client, an error, a reset or shutdown.
    Closed,
    /// A request for hyper: the bytes read from the client so far.
    Handover(Vec<u8>),
}

/// What comes after one request.
enum Step {
    Next,
    Close,
}

/// Serves one client connection until it closes or needs hyper.
pub(super) async fn serve(
    proxy: &Proxy,
    io: &mut TcpStream,
    peer: &Peer,
    client: &mut ClientConn<Stream>,
) -> Outcome {
    let mut buf = Vec::with_capacity(4096);
    let mut request = Vec::with_capacity(1024);
    let mut conn = Conn {
        kept: Kept {
            response: Vec::with_capacity(1024),
            watchdog: Watchdog::new(proxy.origin_timeout),
        },
        client,
        resets: ResetWatch::new(&proxy.fault_changes),
        routes: RouteCache::default(),
    };
    // The shutdown, as this thread relays it: an idle connection closes.
    let stop = proxy.stop.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    if proxy.stopping.load(Ordering::Relaxed) {
        return Outcome::Closed;
    }
    loop {
        let ray_id = crate::ray::next();
        let ray = ray_id.as_str();
        let mut head_deadline = None;
        let req = loop {
            if !buf.is_empty() {
                match head::request(&buf, peer.ip_str(), ray, &mut request) {
                    Parsed::Done(h) => break h,
                    Parsed::Unfit => return Outcome::Handover(buf),
                    Parsed::Partial => {}
                }
            }
            let read = if buf.is_empty() {
                // Idle between requests: the shutdown ends the wait.
                tokio::select! {
                    biased;
                    r = read_more(io, &mut buf) => r,
                    () = &mut stop => return Outcome::Closed,
                }
            } else {
                let deadline = *head_deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + HEADER_READ_TIMEOUT);
                match tokio::time::timeout_at(deadline, read_more(io, &mut buf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::debug!(peer = %peer.addr, "request head not complete in time; closing");
                        return Outcome::Closed;
                    }
                }
            };
            if !matches!(read, Ok(n) if n > 0) {
                return Outcome::Closed;
            }
        };
        let whole = req.len + req.body_len;
        while buf.len() < whole {
            if !matches!(read_more(io, &mut buf).await, Ok(n) if n > 0) {
                return Outcome::Closed;
            }
        }
        request.extend_from_slice(&buf[req.len..whole]);
        buf.drain(..whole);
        let started = Instant::now();
        let turn = conn.client.start(started, proxy.idle_timeout);
        let call = Call {
            started,
            viewer: turn.viewer,
            peer,
            stopping: &proxy.stopping,
            ray,
        };
        let step = proxy
            .exchange_h1(io, &call, req, turn, &request, &mut conn)
            .await;
        conn.client.done(Instant::now());
        if matches!(step, Step::Close) {
            return Outcome::Closed;
        }
        // A request with a large body leaves large buffers; not kept idle.
        for b in [&mut buf, &mut request] {
            if b.capacity() > KEPT_BUF {
                b.shrink_to(KEPT_BUF);
            }
        }
    }
}

/// A client connection's state across its requests.
struct Conn<'a> {
    kept: Kept,
    client: &'a mut ClientConn<Stream>,
    resets: ResetWatch<'a>,
    routes: RouteCache,
}

/// What forwarding reuses: the buffer a response head is rewritten into and
/// the origin timeout's timer.
struct Kept {
    response: Vec<u8>,
    watchdog: Watchdog,
}

/// Buffer capacity a connection keeps between requests.
const KEPT_BUF: usize = 16 * 1024;

/// One request's client side: who asked, on which connection, its ray.
struct Call<'a> {
    /// When the request was read (its routing decision and timeout count
    /// from here).
    started: Instant,
    /// How this request's routing decisions see record changes.
    viewer: Viewer,
    peer: &'a Peer,
    /// A shutdown begun by the time a reply is written closes the connection
    /// after it, and the reply says so (`Connection: close`).
    stopping: &'a AtomicBool,
    ray: &'a str,
}

impl Call<'_> {
    /// Whether the reply about to be written is the connection's last.
    fn last(&self, req: &RequestHead) -> bool {
        req.close || self.stopping.load(Ordering::Relaxed)
    }
}

/// The origin timeout of one client connection's requests, on one timer.
/// Arming it for a request only moves a deadline; the timer is reset when it
/// fires before the deadline, about once per `origin_timeout`, rather than
/// registered and cancelled for every request (1.4 % of the edge's CPU in
/// `perf` under wrk).
struct Watchdog {
    sleep: Pin<Box<tokio::time::Sleep>>,
    deadline: tokio::time::Instant,
}

impl Watchdog {
    fn new(after: Duration) -> Watchdog {
        let deadline = tokio::time::Instant::now() + after;
        Watchdog {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            deadline,
        }
    }

    /// The request started at `from` has until `after` later for its
    /// response head.
    fn arm(&mut self, from: Instant, after: Duration) {
        self.deadline = tokio::time::Instant::from_std(from) + after;
        if self.sleep.deadline() > self.deadline {
            // Only a shorter timeout than before (not the proxy's case).
            self.sleep.as_mut().reset(self.deadline);
        }
    }

    /// Completes once the armed deadline has passed.
    async fn expired(&mut self) {
        loop {
            self.sleep.as_mut().await;
            if tokio::time::Instant::now() >= self.deadline {
                return;
            }
            let deadline = self.deadline;
            self.sleep.as_mut().reset(deadline);
        }
    }
}

/// Reads what is there into `buf`'s spare room, made if short (at least one
/// byte, or 0 at end of file): the client's buffer and an origin's.
async fn read_more(io: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    io.read_buf(buf).await
}

impl Proxy {
    /// One request on the path: route, board, forward (or the edge's own
    /// reply), then the response passed back.
    async fn exchange_h1(
        &self,
        io: &mut TcpStream,
        call: &Call<'_>,
        req: RequestHead,
        turn: Turn,
        request: &[u8],
        conn: &mut Conn<'_>,
    ) -> Step {
        let Conn {
            kept,
            client,
            resets,
            routes,
        } = conn;
        let (host, viewer, cache) = (&req.host, turn.viewer, &mut *routes);
        let routed = routing::origin_for(
            &self.routes,
            cache,
            self.origin_port,
            host,
            call.started,
            viewer,
        );
        let routed = match routed {
            Ok(origin) => origin,
            Err(refusal) => {
                return self
                    .refuse_h1(io, refusal, call, &req, &mut kept.response)
                    .await
            }
        };
        let mut ride = self.board(&self.h1_pool, client, &req.host, routed, turn);
        let (ip, boarded) = (ride.origin.ip(), ride.origin);
        let fault = self.origin_faults.on_request(ip);
        if fault.reset {
            return reset(io, &req.host, ride.origin, call.peer);
        }
        if fault.blackhole {
            ride.conn = None;
        }
        let sent = async {
            if let Some(delay) = fault.delay {
                tokio::time::sleep(delay).await;
            }
            let delayed = fault.delay.is_some();
            self.send_h1(ride, &req, call, request, delayed, kept).await
        };
        let (origin, result) = tokio::select! {
            biased;
            sent = sent => sent,
            () = resets.armed(&self.origin_faults, ip) => {
                return reset(io, &req.host, boarded, call.peer);
            }
        };
        let (mut conn, head) = match result {
            Ok(got) => got,
            Err(failure) => {
                let error = EdgeError::Origin { origin, failure };
                return self
                    .refuse_h1(io, error, call, &req, &mut kept.response)
                    .await;
            }
        };
        self.metrics.proxy_reply(Some(origin), head.status);
        // The reply said it is the last (the client asked, a shutdown has
        // begun, or its body ends with the origin's close).
        let last = head.last;
        match relay(io, &mut conn, head, &mut kept.response).await {
            Ok(reusable) => {
                if reusable {
                    client.hold(Held {
                        host: req.host,
                        origin,
                        conn,
                    });
                }
                if last {
                    Step::Close
                } else {
                    Step::Next
                }
            }
            Err(e) => {
                tracing::debug!(%origin, host = %req.host, error = %e, "reply not passed on whole; closing the client connection");
                Step::Close
            }
        }
    }

    /// Forwards on the ride; a sticky origin gone before it saw the request
    /// gets the request a fresh routing decision (as [`Proxy::send`]).
    async fn send_h1(
        &self,
        ride: Ride<Stream>,
        req: &RequestHead,
        call: &Call<'_>,
        request: &[u8],
        delayed: bool,
        kept: &mut Kept,
    ) -> (SocketAddr, Result<(Stream, ResponseHead), Failure>) {
        let exchange = Exchange {
            pool: &self.h1_pool,
            origin_timeout: self.origin_timeout,
            delayed,
            request,
            req,
            call,
        };
        let result = exchange
            .forward(ride.origin, ride.conn, req.replayable, kept)
            .await;
        match result {
            Err(Failure::Connect(e, _)) if ride.sticky => {
                match self.reroute(&req.host, call.viewer, ride.origin, &e) {
                    Some(next) => {
                        let again = exchange.forward(next, None, false, kept);
                        let result = again.await;
                        (next, result)
                    }
                    None => (ride.origin, Err(Failure::Connect(e, None))),
                }
            }
            other => (ride.origin, other),
        }
    }

    /// The edge's own reply on the path: logged, counted, written.
    async fn refuse_h1(
        &self,
        io: &mut TcpStream,
        error: EdgeError,
        call: &Call<'_>,
        req: &RequestHead,
        out: &mut Vec<u8>,
    ) -> Step {
        error.log(&req.host, self.origin_timeout);
        self.metrics.proxy_reply(error.origin(), error.status());
        out.clear();
        let last = call.last(req);
        error.write_page(&req.host, call.ray, req.json, last, out);
        match io.write_all(out).await {
            Ok(()) if !last => Step::Next,
            _ => Step::Close,
        }
    }
}

/// A `reset` fault: the client's connection closes with an RST and no reply;
/// a request already waiting on its origin has that connection dropped.
fn reset(io: &TcpStream, host: &str, origin: SocketAddr, peer: &Peer) -> Step {
    if let Err(e) = io.set_zero_linger() {
        tracing::debug!(error = %e, "SO_LINGER 0 failed; the close will be a FIN");
    }
    super::log_reset(origin.ip(), host, peer);
    Step::Close
}

/// One request's trip to an origin: the same for the first try and a retry.
struct Exchange<'a> {
    pool: &'a Pool<Stream>,
    origin_timeout: Duration,
    /// A latency fault held the request after its connection was chosen;
    /// a kept connection is looked at again (else boarding just did).
    delayed: bool,
    /// The rewritten request, head and body.
    request: &'a [u8],
    req: &'a RequestHead,
    call: &'a Call<'a>,
}

/// Why one try on one connection got no response head.
#[derive(Debug, thiserror::Error)]
enum Trip {
    /// The first write failed: the origin had already closed the
    /// connection, so it cannot have seen the request.
    #[error("origin connection closed before the request was sent: {0}")]
    Unsent(std::io::Error),
    /// Sent (or part of it), and the connection ended with no byte of a
    /// response: the origin may have acted on it.
    #[error("origin closed the connection without a response")]
    NoReply,
    #[error("origin connection broke mid-response: {0}")]
    Cut(String),
    #[error(transparent)]
    Bad(#[from] head::BadResponse),
}

impl Exchange<'_> {
    /// Sends on the given connection (or a pooled or new one) and reads the
    /// response head, with the keep-alive race handled as in
    /// `forward::forward`: a kept connection the origin closed while idle,
    /// or one whose first write fails, gets the request on a new connection;
    /// one that ends with no response replays only a safe bodiless request
    /// (`replay`), and only when the connection was a reused one.
    async fn forward(
        &self,
        origin: SocketAddr,
        conn: Option<Stream>,
        replay: bool,
        kept: &mut Kept,
    ) -> Result<(Stream, ResponseHead), Failure> {
        let (mut conn, mut reused) = match conn {
            Some(c) => (c, true),
            None => self
                .pool
                .get(origin)
                .await
                .map_err(|e| Failure::Connect(e, None))?,
        };
        kept.watchdog.arm(self.call.started, self.origin_timeout);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let tried = if reused && self.delayed && conn.is_closed() {
                Err(Trip::Unsent(ErrorKind::ConnectionReset.into()))
            } else {
                tokio::select! {
                    biased;
                    r = self.round_trip(&mut conn, &mut kept.response) => r,
                    () = kept.watchdog.expired() => return Err(Failure::Timeout),
                }
            };
            match tried {
                Ok(head) => return Ok((conn, head)),
                Err(Trip::Unsent(_)) if attempts < 3 => {}
                Err(Trip::NoReply) if reused && replay && attempts < 3 => {
                    tracing::debug!(%origin, "reused origin connection failed; replaying a safe request");
                }
                Err(trip) => return Err(Failure::Broken(Box::new(trip))),
            }
            conn = self
                .pool
                .connect(origin)
                .await
                .map_err(|e| Failure::Connect(e, None))?;
            reused = false;
        }
    }

    /// Writes the request and reads until a final response head is parsed
    /// (1xx heads are passed over); its rewritten head goes to `response`.
    async fn round_trip(
        &self,
        conn: &mut Stream,
        response: &mut Vec<u8>,
    ) -> Result<ResponseHead, Trip> {
        conn.buf.clear();
        // Only a write that fails before any byte went out is "unsent": a
        // request larger than the socket's buffer goes out in parts, and an
        // origin may answer from its head and close before the rest.
        let mut written = 0;
        while written < self.request.len() {
            match conn.io.write(&self.request[written..]).await {
                Ok(n) if n > 0 => written += n,
                Ok(_) if written == 0 => return Err(Trip::Unsent(ErrorKind::WriteZero.into())),
                Err(e) if written == 0 => return Err(Trip::Unsent(e)),
                _ => return Err(Trip::NoReply),
            }
        }
        let mut seen = false;
        loop {
            if !conn.buf.is_empty() {
                seen = true;
                let last = self.call.last(self.req);
                match head::response(&conn.buf, self.req.head, self.call.ray, last, response)? {
                    Parsed::Done(head::Response::Final(h)) => return Ok(h),
                    Parsed::Done(head::Response::Informational(n)) => {
                        conn.buf.drain(..n);
                        continue;
                    }
                    Parsed::Partial | Parsed::Unfit => {}
                }
            }
            match read_more(&mut conn.io, &mut conn.buf).await {
                Ok(n) if n > 0 => {}
                Ok(_) if !seen => return Err(Trip::NoReply),
                Err(_) if !seen => return Err(Trip::NoReply),
                Ok(_) => return Err(Trip::Cut("end of file".into())),
                Err(e) => return Err(Trip::Cut(e.to_string())),
            }
        }
    }
}

/// Why a reply was not passed on whole (the client connection is closed).
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("client connection failed: {0}")]
    Client(std::io::Error),
    #[error("origin connection failed mid-body: {0}")]
    Origin(String),
    #[error(transparent)]
    Chunk(#[from] body::BadChunk),
}

/// Writes the response head and passes the body on as it arrives. Returns
/// whether the origin connection can carry another request.
async fn relay(
    io: &mut TcpStream,
    conn: &mut Stream,
    head: ResponseHead,
    out: &mut Vec<u8>,
) -> Result<bool, RelayError> {
    let mut framing = head.framing;
    let (n, mut done) = framing.take(&conn.buf[head.len..])?;
    out.extend_from_slice(&conn.buf[head.len..head.len + n]);
    // Bytes past the response: the origin is out of step; not reused.
    let mut extra = conn.buf.len() - head.len - n;
    conn.buf.clear();
    io.write_all(out).await.map_err(RelayError::Client)?;
    while !done {
        match read_more(&mut conn.io, &mut conn.buf).await {
            Ok(0) if framing == Framing::UntilClose => break,
            Ok(0) => return Err(RelayError::Origin("end of file".into())),
            Err(e) => return Err(RelayError::Origin(e.to_string())),
            Ok(_) => {}
        }
        let (n, end) = framing.take(&conn.buf)?;
        io.write_all(&conn.buf[..n])
            .await
            .map_err(RelayError::Client)?;
        extra += conn.buf.len() - n;
        conn.buf.clear();
        done = end;
    }
    Ok(head.keep_alive && extra == 0 && framing != Framing::UntilClose)
}
