//! The proxy listener: the Host header picks the record, a proxied A/AAAA
//! record's content picks the origin IP, and the request is forwarded over a
//! keep-alive connection.
//!
//! Propagation is modeled per client connection, as on a real edge where a
//! client's connection lands on one edge server and each server learns of a
//! record change at its own moment: every client connection draws a point
//! `u` in [0, 1) and sees the new record once `u · propagation` has passed
//! since the change. So the share of connections on the new origin rises
//! linearly across the window — also for long-lived, never-idle keep-alive
//! connections — and "both instances answer" lasts about the window. Within
//! that, a client connection reuses its origin connection until it has been
//! idle for `idle_timeout` or the origin closes it.
//!
//! Errors the edge produces itself, with Cloudflare's status codes:
//! - unknown host: 530, error 1001 (DNS resolution error);
//! - host whose records are DNS-only: 403, error 1003 (a real client would
//!   reach the origin directly; the edge refuses traffic it does not proxy);
//! - proxied record that is not an address (CNAME): 530, error 1016;
//! - origin refused the connection: 521; connect timeout: 522; other connect
//!   failure: 523; no response head within `origin_timeout`: 524; the origin
//!   broke the connection after the request was sent: 520.
//!
//! A reused keep-alive connection that the origin closes just as the edge
//! sends on it (the classic HTTP/1.1 race, e.g. an origin shutting down
//! gracefully closes its idle connections): a request the origin never saw is
//! retried on a new connection; a bodiless GET/HEAD/OPTIONS is replayed; any
//! other request gets 520, as on Cloudflare (HTTP forbids replaying it
//! blindly). If the sticky origin then refuses connections, the request is
//! routed afresh instead of failing.

use crate::metrics::{Metrics, NO_ORIGIN};
use crate::routes::{Routes, Target};
use crate::upstream::{ConnectError, Pool, Sender};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::upstream::Body;

/// The proxy's settings and shared parts.
#[derive(Debug)]
pub struct Proxy {
    pub routes: Arc<Routes>,
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
    pub origin_port: u16,
    pub idle_timeout: Duration,
    pub origin_timeout: Duration,
}

/// The origin one client connection is bound to.
struct Sticky {
    host: String,
    origin: SocketAddr,
    sender: Sender,
    last_done: Instant,
}

type ConnState = Arc<Mutex<Option<Sticky>>>;

/// Accepts until `shutdown`, then lets every connection finish its request.
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
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
        let proxy = Arc::clone(&proxy);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let state: ConnState = Arc::new(Mutex::new(None));
            // This connection's moment in every propagation window.
            let coin: f64 = rand::random();
            let svc = {
                let proxy = Arc::clone(&proxy);
                let state = Arc::clone(&state);
                service_fn(move |req| {
                    let proxy = Arc::clone(&proxy);
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(proxy.handle(req, &state, peer, coin).await) }
                })
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc);
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
            let sticky = state.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(s) = sticky {
                proxy.pool.put(s.origin, s.sender);
            }
        });
    }
}

/// Why a request could not be forwarded.
enum Failure {
    /// No connection; carries the request when it was never sent.
    Connect(ConnectError, Option<Box<Request<Body>>>),
    Timeout,
    Broken(hyper::Error),
}

impl Proxy {
    async fn handle(
        &self,
        req: Request<Incoming>,
        state: &ConnState,
        peer: SocketAddr,
        coin: f64,
    ) -> Response<Body> {
        let ray = crate::ray::next();
        let Some(host) = host_of(&req) else {
            self.metrics.proxy_reply(NO_ORIGIN, 400);
            return error_page(
                StatusCode::BAD_REQUEST,
                400,
                "Bad request: no Host header",
                "",
                &ray,
                &req,
            );
        };
        let now = Instant::now();
        let previous = state.lock().unwrap_or_else(|p| p.into_inner()).take();
        let sticky_ok = previous.as_ref().is_some_and(|s| {
            s.host == host
                && now.saturating_duration_since(s.last_done) < self.idle_timeout
                && !s.sender.is_closed()
                && self.routes.resolve(&host, now, coin) == Target::Origin(s.origin.ip())
        });
        let (mut origin, sender) = if sticky_ok {
            let Some(s) = previous else {
                unreachable_sticky();
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    500,
                    "Internal error",
                    &host,
                    &ray,
                    &req,
                );
            };
            (s.origin, Some(s.sender))
        } else {
            match self.routes.resolve(&host, now, coin) {
                Target::Origin(ip) => {
                    let origin = SocketAddr::new(ip, self.origin_port);
                    let reuse = match previous {
                        Some(s) if s.origin == origin && !s.sender.is_closed() => Some(s.sender),
                        Some(s) => {
                            if s.host == host {
                                self.metrics.origin_switched();
                                tracing::debug!(%host, from = %s.origin, to = %origin, "client connection re-routed");
                            }
                            self.pool.put(s.origin, s.sender);
                            None
                        }
                        None => None,
                    };
                    (origin, reuse)
                }
                other => {
                    *state.lock().unwrap_or_else(|p| p.into_inner()) = previous;
                    let (status, code, title) = match other {
                        Target::NotProxied => (
                            StatusCode::FORBIDDEN,
                            1003,
                            "Not proxied: the record is DNS only",
                        ),
                        Target::Unroutable => (
                            StatusCode::from_u16(530).unwrap_or(StatusCode::BAD_GATEWAY),
                            1016,
                            "Origin DNS error",
                        ),
                        _ => (
                            StatusCode::from_u16(530).unwrap_or(StatusCode::BAD_GATEWAY),
                            1001,
                            "DNS resolution error",
                        ),
                    };
                    self.metrics.proxy_reply(NO_ORIGIN, status.as_u16());
                    return error_page(status, code, title, &host, &ray, &req);
                }
            }
        };

        let accept_json = wants_json(req.headers());
        let upstream_req = prepare_request(req, &ray, peer);
        let replay = replayable(&upstream_req);
        let mut result = self.forward(origin, sender, upstream_req, replay).await;
        if sticky_ok {
            if let Err(Failure::Connect(e, Some(unsent))) = result {
                // The origin this connection was stuck to went away: that ends
                // the stickiness, so the request gets a fresh routing decision.
                result = match self.routes.resolve(&host, Instant::now(), coin) {
                    Target::Origin(ip) if SocketAddr::new(ip, self.origin_port) != origin => {
                        let next = SocketAddr::new(ip, self.origin_port);
                        tracing::debug!(%host, from = %origin, to = %next, error = %e, "sticky origin gone; re-routed");
                        self.metrics.origin_switched();
                        origin = next;
                        self.forward(origin, None, *unsent, None).await
                    }
                    _ => Err(Failure::Connect(e, None)),
                };
            }
        }
        let origin_label = origin.to_string();
        match result {
            Ok((resp, sender)) => {
                *state.lock().unwrap_or_else(|p| p.into_inner()) = Some(Sticky {
                    host,
                    origin,
                    sender,
                    last_done: Instant::now(),
                });
                self.metrics
                    .proxy_reply(&origin_label, resp.status().as_u16());
                prepare_response(resp, &ray)
            }
            Err(failure) => {
                let (code, title) = match &failure {
                    Failure::Connect(ConnectError::Refused, _) => (521, "Web server is down"),
                    Failure::Connect(ConnectError::Timeout, _) => (522, "Connection timed out"),
                    Failure::Connect(..) => (523, "Origin is unreachable"),
                    Failure::Timeout => (524, "A timeout occurred"),
                    Failure::Broken(_) => (520, "Web server is returning an unknown error"),
                };
                match &failure {
                    Failure::Connect(e, _) => {
                        tracing::warn!(%origin, %host, error = %e, code, "origin connect failed")
                    }
                    Failure::Timeout => {
                        tracing::warn!(%origin, %host, timeout = ?self.origin_timeout, "origin response timed out")
                    }
                    Failure::Broken(e) => {
                        tracing::warn!(%origin, %host, error = %e, "origin connection broke")
                    }
                }
                self.metrics.proxy_reply(&origin_label, code);
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                page(status, code, title, &host, &ray, accept_json)
            }
        }
    }

    /// Sends on the given connection (or a pooled/new one). A request the
    /// origin never saw (its connection was already closing) is retried on a
    /// fresh connection. One it may have seen is replayed only if it is a safe
    /// method without a body and the connection was a reused keep-alive one
    /// (the origin closing an idle connection as we wrote to it); an order
    /// POST is never sent twice.
    async fn forward(
        &self,
        origin: SocketAddr,
        sender: Option<Sender>,
        mut req: Request<Body>,
        mut replay: Option<Request<Body>>,
    ) -> Result<(Response<Incoming>, Sender), Failure> {
        let (mut sender, mut reused) = match sender {
            Some(s) => (s, true),
            None => match self.pool.get(origin).await {
                Ok(got) => got,
                Err(e) => return Err(Failure::Connect(e, Some(Box::new(req)))),
            },
        };
        let deadline = tokio::time::Instant::now() + self.origin_timeout;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let ready = tokio::time::timeout_at(deadline, sender.ready()).await;
            match ready {
                Err(_) => return Err(Failure::Timeout),
                Ok(Err(_)) => {
                    sender = match self.pool.connect(origin).await {
                        Ok(s) => s,
                        Err(e) => return Err(Failure::Connect(e, Some(Box::new(req)))),
                    };
                    reused = false;
                    continue;
                }
                Ok(Ok(())) => {}
            }
            match tokio::time::timeout_at(deadline, sender.try_send_request(req)).await {
                Err(_) => return Err(Failure::Timeout),
                Ok(Ok(resp)) => return Ok((resp, sender)),
                Ok(Err(mut e)) => match (e.take_message(), replay.take()) {
                    (Some(unsent), _) if attempts < 3 => {
                        req = unsent;
                        sender = match self.pool.connect(origin).await {
                            Ok(s) => s,
                            Err(e) => return Err(Failure::Connect(e, Some(Box::new(req)))),
                        };
                        reused = false;
                    }
                    (None, Some(again)) if reused && attempts < 3 => {
                        tracing::debug!(%origin, error = %e.error(), "reused origin connection failed; replaying a safe request");
                        req = again;
                        sender = match self.pool.connect(origin).await {
                            Ok(s) => s,
                            Err(e) => return Err(Failure::Connect(e, Some(Box::new(req)))),
                        };
                        reused = false;
                    }
                    _ => return Err(Failure::Broken(e.into_error())),
                },
            }
        }
    }
}

#[cold]
fn unreachable_sticky() {
    tracing::error!("sticky route vanished between check and use");
}

/// The Host header (or the absolute URI's host), lowercased, port stripped.
fn host_of<B>(req: &Request<B>) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().host().map(str::to_string))?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default().to_string()
    } else {
        raw.rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or(raw)
    };
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Headers that describe one hop and must not be forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .filter(|s| !s.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(listed.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// A copy of a GET/HEAD/OPTIONS request without a body, for one replay.
fn replayable(req: &Request<Body>) -> Option<Request<Body>> {
    use hyper::body::Body as _;
    let safe = matches!(
        *req.method(),
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if !safe || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(Either::Right(Full::new(Bytes::new())));
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

fn prepare_request(req: Request<Incoming>, ray: &str, peer: SocketAddr) -> Request<Body> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if parts.uri.scheme().is_some() {
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if let Ok(uri) = pq.parse::<Uri>() {
            parts.uri = uri;
        }
    }
    let ip = peer.ip().to_string();
    if let Ok(v) = HeaderValue::from_str(&ip) {
        parts.headers.insert("cf-connecting-ip", v.clone());
        let xff = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|h| h.to_str().ok())
        {
            Some(prev) => HeaderValue::from_str(&format!("{prev}, {ip}")).unwrap_or(v),
            None => v,
        };
        parts.headers.insert("x-forwarded-for", xff);
    }
    if let Ok(v) = HeaderValue::from_str(ray) {
        parts.headers.insert(crate::ray::HEADER, v);
    }
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("http"));
    Request::from_parts(parts, Either::Left(body))
}

fn prepare_response(resp: Response<Incoming>, ray: &str) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::TRANSFER_ENCODING);
    if let Ok(v) = HeaderValue::from_str(ray) {
        parts.headers.insert(crate::ray::HEADER, v);
    }
    parts
        .headers
        .insert(header::SERVER, HeaderValue::from_static("cloudflare"));
    Response::from_parts(parts, Either::Left(body))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn error_page<B>(
    status: StatusCode,
    code: u16,
    title: &str,
    host: &str,
    ray: &str,
    req: &Request<B>,
) -> Response<Body> {
    page(status, code, title, host, ray, wants_json(req.headers()))
}

/// A small Cloudflare-like error page: HTML, or JSON for `Accept: application/json`.
fn page(
    status: StatusCode,
    code: u16,
    title: &str,
    host: &str,
    ray: &str,
    json: bool,
) -> Response<Body> {
    let (content_type, body) = if json {
        (
            "application/json",
            serde_json::json!({
                "error_code": code,
                "error_name": title,
                "host": host,
                "ray_id": ray,
                "status": status.as_u16(),
            })
            .to_string(),
        )
    } else {
        (
            "text/html; charset=UTF-8",
            format!(
                "<!DOCTYPE html>\n<html><head><title>{host} | {code}: {title}</title></head>\n<body><h1>Error {code}</h1><p>{title}</p><p>Ray ID: {ray}</p><p>edge (handover's local Cloudflare stand-in)</p></body></html>\n"
            ),
        )
    };
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    if status.canonical_reason().is_none() {
        // hyper would otherwise write `<none>` as the reason phrase.
        resp.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(title_reason(
                status.as_u16(),
            )));
    }
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::SERVER, HeaderValue::from_static("cloudflare"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(ray) {
        h.insert(crate::ray::HEADER, v);
    }
    resp
}

/// Reason phrases for the non-standard statuses, as Cloudflare sends them.
fn title_reason(code: u16) -> &'static [u8] {
    match code {
        520 => b"Unknown Error",
        521 => b"Web Server Is Down",
        522 => b"Connection Timed Out",
        523 => b"Origin Is Unreachable",
        524 => b"A Timeout Occurred",
        _ => b"Edge Error",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(host: &str) -> Request<()> {
        Request::builder().header("host", host).body(()).unwrap()
    }

    #[test]
    fn host_is_lowercased_and_port_stripped() {
        assert_eq!(
            host_of(&req("Shop.Handover.Test:8080")).unwrap(),
            "shop.handover.test"
        );
        assert_eq!(
            host_of(&req("shop.handover.test.")).unwrap(),
            "shop.handover.test"
        );
        assert_eq!(host_of(&req("[::1]:80")).unwrap(), "::1");
        let no_host = Request::builder().body(()).unwrap();
        assert!(host_of(&no_host).is_none());
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("x-instance", HeaderValue::from_static("a"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("connection").is_none());
        assert!(h.get("x-private").is_none());
        assert_eq!(h.get("x-instance").unwrap(), "a");
    }
}
