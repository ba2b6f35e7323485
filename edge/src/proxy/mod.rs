//! The proxy listener: each request is routed (Host → record → origin), put
//! on an origin connection by the stickiness rule, forwarded over a
//! keep-alive connection, and any failure turned into Cloudflare's reply for
//! where it came from.
//!
//! - `routing`: Host → record → origin, or a DNS-side refusal.
//! - `sticky`: the per-client-connection moment in the propagation window,
//!   the re-resolve after an idle spell longer than `idle_timeout`, and which
//!   origin connection a client connection keeps.
//! - `forward`: sending, with the keep-alive race's retry and replay.
//! - `headers`: what crosses the hop, both ways.
//! - `error_page`: the edge's own replies, by where the failure came from.
//! - `h1`: the proxy's own HTTP/1.1 path, which serves the plain requests
//!   and hands any other to hyper (the rest of this module).
//! - `client_stream`: the client's connection, which a `reset` fault aborts
//!   with an RST.
//! - `workers`: the proxy's threads, one single-threaded runtime and origin
//!   pool each; accepted connections are dealt to them in turn.
//!
//! Proxy faults ([`crate::origin_faults`]) are applied once the origin is
//! chosen: a `reset` aborts the client connection instead of forwarding (or
//! while waiting for the origin's response head), `latency` waits before
//! forwarding, `blackhole` drops the kept origin connection so the pool's
//! connect stalls into a 522.

mod client_stream;
mod error_page;
mod forward;
mod h1;
mod headers;
mod routing;
mod sticky;
mod workers;

use crate::metrics::Metrics;
use crate::origin_faults::OriginFaults;
use crate::routes::{RouteCache, Routes};
use crate::upstream::{OriginConn, Pool, Sender, Stream};
use client_stream::{Abort, ClientStream};
use error_page::EdgeError;
use forward::{Failure, Outgoing};
use headers::Peer;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sticky::{ClientConn, Held, Ride, Turn};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::upstream::Body;

/// The proxy's settings and shared parts.
#[derive(Debug)]
pub struct Proxy {
    pub routes: Arc<Routes>,
    /// Idle origin connections for hyper's requests. Each proxy thread has
    /// its own (the first thread this one, the others a
    /// [`Proxy::for_thread`] copy), since a connection's task runs on the
    /// thread that opened it.
    pub pool: Pool<Sender>,
    /// Idle origin connections for the HTTP/1.1 path (`h1`), per thread too:
    /// a socket is registered with its thread's reactor.
    pub h1_pool: Pool<Stream>,
    pub metrics: Arc<Metrics>,
    /// Faults armed per origin IP (shared with the admin API and the pool).
    pub origin_faults: Arc<OriginFaults>,
    /// This thread's relay of fault changes, which requests waiting on an
    /// origin listen to for a `reset` (see [`OriginFaults::relay_changes`]).
    pub fault_changes: Arc<tokio::sync::Notify>,
    pub origin_port: u16,
    pub idle_timeout: Duration,
    pub origin_timeout: Duration,
    /// Proxy threads (`proxy_threads`).
    pub threads: usize,
    /// Set once the shutdown has begun (a flag every reply can read without
    /// the lock `CancellationToken::is_cancelled` takes).
    pub stopping: Arc<AtomicBool>,
    /// This thread's relay of the shutdown to idle HTTP/1.1-path connections
    /// (a lock no other thread takes, unlike the shutdown token's).
    pub stop: Arc<tokio::sync::Notify>,
}

/// Starts the proxy threads; the returned future accepts until `shutdown`,
/// deals each connection to a thread in turn, then lets every connection
/// finish its request (the threads stop when it completes or is dropped).
pub fn start(
    listener: TcpListener,
    proxy: Proxy,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let workers = workers::Workers::start(proxy.threads)?;
    let others: Vec<Arc<Proxy>> = (1..workers.len())
        .map(|_| Arc::new(proxy.for_thread()))
        .collect();
    let proxies: Vec<Arc<Proxy>> = std::iter::once(Arc::new(proxy)).chain(others).collect();
    for (i, proxy) in proxies.iter().enumerate() {
        let relay =
            Arc::clone(&proxy.origin_faults).relay_changes(Arc::clone(&proxy.fault_changes));
        workers.handle(i).spawn(relay);
    }
    Ok(serve(listener, workers, proxies, shutdown, tracker))
}

async fn serve(
    listener: TcpListener,
    workers: workers::Workers,
    proxies: Vec<Arc<Proxy>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => {
                // The flag first: a connection listens, then reads it.
                proxies[0].stopping.store(true, Ordering::Relaxed);
                for proxy in &proxies {
                    proxy.stop.notify_waiters();
                }
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // Re-registered with the chosen thread's reactor inside its task.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "accepted connection lost before dispatch");
                continue;
            }
        };
        let (i, thread) = workers.next();
        let proxy = Arc::clone(&proxies[i]);
        let shutdown = shutdown.clone();
        tracker.spawn_on(serve_connection(proxy, stream, peer, shutdown), thread);
    }
    tracker.wait().await;
}

/// One client connection, on its proxy thread, until it closes or the
/// shutdown has let its request finish.
async fn serve_connection(
    proxy: Arc<Proxy>,
    stream: std::net::TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let mut stream = match tokio::net::TcpStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot register a client connection");
            return;
        }
    };
    let from = Arc::new(Peer::new(peer));
    let mut plain = ClientConn::<Stream>::new();
    let outcome = h1::serve(&proxy, &mut stream, &from, &mut plain).await;
    if let Some(held) = plain.release() {
        proxy.h1_pool.put(held.origin, held.conn);
    }
    let h1::Outcome::Handover(read) = outcome else {
        return;
    };
    let client = Arc::new(Mutex::new(plain.carry_over::<Sender>()));
    let abort = Arc::new(Abort::default());
    let svc = {
        let proxy = Arc::clone(&proxy);
        let client = Arc::clone(&client);
        let abort = Arc::clone(&abort);
        service_fn(move |req| {
            let proxy = Arc::clone(&proxy);
            let client = Arc::clone(&client);
            let abort = Arc::clone(&abort);
            let from = Arc::clone(&from);
            async move {
                let call = Call {
                    client: &client,
                    abort: &abort,
                    peer: &from,
                    ray: crate::ray::next_header(),
                    json: headers::wants_json(req.headers()),
                };
                Ok::<_, Infallible>(proxy.handle(req, &call).await)
            }
        })
    };
    let io = ClientStream::new(stream, abort, read);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // One flat buffer sent with send(2) rather than writev(2) of head
        // and body: replies are small, and the socket call skips the VFS.
        .writev(false)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
    let held = lock(&client).release();
    if let Some(held) = held {
        proxy.pool.put(held.origin, held.conn);
    }
}

/// A client connection's stickiness on hyper's path, where its requests
/// share it. A poisoned lock only means a panic elsewhere; the state is
/// plain data.
fn lock<C>(client: &Mutex<ClientConn<C>>) -> std::sync::MutexGuard<'_, ClientConn<C>> {
    client.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `reset` fault applied: logged the same way on both paths.
fn log_reset(origin: IpAddr, host: &str, peer: &Peer) {
    tracing::info!(%origin, %host, peer = %peer.addr, "proxy fault: client connection reset");
}

/// One request on its client connection: what stickiness, a reset and the
/// edge's own replies need.
struct Call<'a> {
    client: &'a Mutex<ClientConn<Sender>>,
    abort: &'a Abort,
    peer: &'a Peer,
    ray: HeaderValue,
    /// The client asked for JSON error pages.
    json: bool,
}

impl Proxy {
    /// This proxy with an empty pool of its own, for another proxy thread.
    fn for_thread(&self) -> Proxy {
        Proxy {
            routes: Arc::clone(&self.routes),
            pool: self.pool.fresh(),
            h1_pool: self.h1_pool.fresh(),
            metrics: Arc::clone(&self.metrics),
            origin_faults: Arc::clone(&self.origin_faults),
            fault_changes: Arc::default(),
            origin_port: self.origin_port,
            idle_timeout: self.idle_timeout,
            origin_timeout: self.origin_timeout,
            threads: 1,
            stopping: Arc::clone(&self.stopping),
            stop: Arc::default(),
        }
    }

    /// One request: its turn on the client connection (re-resolving after
    /// an idle spell), then route, board, forward and reply.
    async fn handle(&self, req: Request<Incoming>, call: &Call<'_>) -> Response<Body> {
        let turn = lock(call.client).start(Instant::now(), self.idle_timeout);
        let resp = self.respond(req, call, turn).await;
        lock(call.client).done(Instant::now());
        resp
    }

    /// The origin's reply, or the edge's own for what went wrong.
    async fn respond(&self, req: Request<Incoming>, call: &Call<'_>, turn: Turn) -> Response<Body> {
        let (ray, json) = (&call.ray, call.json);
        let Some(host) = routing::host_of(&req) else {
            return self.refuse(EdgeError::NoHost, "", ray, json);
        };
        let now = Instant::now();
        let routed = match routing::origin_for(
            &self.routes,
            &mut RouteCache::default(),
            self.origin_port,
            &host,
            now,
            turn.viewer,
        ) {
            Ok(origin) => origin,
            Err(refusal) => return self.refuse(refusal, &host, ray, json),
        };
        let mut ride = self.board(&self.pool, &mut lock(call.client), &host, routed, turn);
        let ip = ride.origin.ip();
        let fault = self.origin_faults.on_request(ip);
        if fault.reset {
            return self.reset(call, &host, ip);
        }
        if fault.blackhole {
            // A black-holed origin's kept connection is as dead as a new one.
            ride.conn = None;
        }
        let outgoing = Outgoing::new(headers::prepare_request(req, ray, call.peer));
        let exchange = async {
            if let Some(delay) = fault.delay {
                tokio::time::sleep(delay).await;
            }
            self.send(ride, &host, call.client, outgoing).await
        };
        let (origin, result) = tokio::select! {
            // In order: no random draw per request.
            biased;
            sent = exchange => sent,
            () = self.origin_faults.reset_armed(ip, &self.fault_changes) => return self.reset(call, &host, ip),
        };
        match result {
            Ok((resp, conn)) => {
                lock(call.client).hold(Held { host, origin, conn });
                self.metrics
                    .proxy_reply(Some(origin), resp.status().as_u16());
                headers::prepare_response(resp, ray)
            }
            Err(failure) => self.refuse(EdgeError::Origin { origin, failure }, &host, ray, json),
        }
    }

    /// A `reset` fault: the client's connection is aborted with an RST as
    /// hyper starts to write the reply, so the reply returned here is never
    /// sent. A request not yet forwarded never reaches the origin; one
    /// already waiting on it has its origin connection dropped.
    fn reset(&self, call: &Call<'_>, host: &str, origin: IpAddr) -> Response<Body> {
        call.abort.trip();
        log_reset(origin, host, call.peer);
        let mut resp = Response::new(http_body_util::Either::Right(http_body_util::Full::new(
            bytes::Bytes::new(),
        )));
        *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
        resp
    }

    /// Takes the client connection's origin connection per the stickiness
    /// rule; one it gives up goes back to the pool.
    fn board<C: OriginConn>(
        &self,
        pool: &Pool<C>,
        client: &mut ClientConn<C>,
        host: &str,
        routed: SocketAddr,
        turn: Turn,
    ) -> Ride<C> {
        let (ride, left) = client.board(host, routed, turn);
        if let Some(left) = left {
            if left.moved {
                self.metrics.origin_switched();
                tracing::debug!(%host, from = %left.origin, to = %routed, "client connection re-routed");
            }
            pool.put(left.origin, left.conn);
        }
        ride
    }

    /// Where a request goes when the origin its connection was stuck to
    /// refused it unsent: a fresh routing decision, if that lands elsewhere.
    fn reroute(
        &self,
        host: &str,
        viewer: crate::routes::Viewer,
        from: SocketAddr,
        error: &crate::upstream::ConnectError,
    ) -> Option<SocketAddr> {
        let next = routing::origin_for(
            &self.routes,
            &mut RouteCache::default(),
            self.origin_port,
            host,
            Instant::now(),
            viewer,
        );
        let next = next.ok().filter(|next| *next != from)?;
        tracing::debug!(%host, %from, to = %next, %error, "sticky origin gone; re-routed");
        self.metrics.origin_switched();
        Some(next)
    }

    /// Forwards on the ride. The origin a client connection was stuck to
    /// going away (before it saw the request) ends the stickiness, so the
    /// request gets a fresh routing decision. Returns the origin that was
    /// last tried.
    async fn send(
        &self,
        ride: Ride<Sender>,
        host: &str,
        client: &Mutex<ClientConn<Sender>>,
        outgoing: Outgoing,
    ) -> (SocketAddr, Result<(Response<Incoming>, Sender), Failure>) {
        let result = forward::forward(
            &self.pool,
            self.origin_timeout,
            ride.origin,
            ride.conn,
            outgoing,
        )
        .await;
        match result {
            Err(Failure::Connect(e, Some(unsent))) if ride.sticky => {
                let viewer = lock(client).viewer();
                match self.reroute(host, viewer, ride.origin, &e) {
                    Some(next) => {
                        let again = Outgoing::once(*unsent);
                        let result =
                            forward::forward(&self.pool, self.origin_timeout, next, None, again)
                                .await;
                        (next, result)
                    }
                    None => (ride.origin, Err(Failure::Connect(e, None))),
                }
            }
            other => (ride.origin, other),
        }
    }

    /// The edge's own reply: logged when the origin failed, counted, rendered.
    fn refuse(
        &self,
        error: EdgeError,
        host: &str,
        ray: &HeaderValue,
        json: bool,
    ) -> Response<Body> {
        error.log(host, self.origin_timeout);
        self.metrics.proxy_reply(error.origin(), error.status());
        error.page(host, ray.to_str().unwrap_or_default(), json)
    }
}
