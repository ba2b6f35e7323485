//! Sending one request to its origin, and the keep-alive race.
//!
//! A reused keep-alive connection that the origin closes just as the edge
//! sends on it (the classic HTTP/1.1 race, e.g. an origin shutting down
//! gracefully closes its idle connections): a request the origin never saw is
//! retried on a new connection; a bodiless GET/HEAD/OPTIONS is replayed; any
//! other request fails as [`Failure::Broken`] (HTTP forbids replaying it
//! blindly), which the edge answers with 520 as Cloudflare does.

use crate::upstream::{Body, ConnectError, Pool, Sender};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a request could not be forwarded; where in the exchange it failed
/// decides the 52x the client sees.
pub(super) enum Failure {
    /// No connection; carries the request when it was never sent.
    Connect(ConnectError, Option<Box<Request<Body>>>),
    /// No response head within the origin timeout.
    Timeout,
    /// The origin broke the connection after the request was sent.
    Broken(Box<dyn std::error::Error + Send + Sync>),
}

impl Failure {
    fn unsent(e: ConnectError, req: Request<Body>) -> Failure {
        Failure::Connect(e, Some(Box::new(req)))
    }
}

/// A request on its way to an origin, with a spare copy when it may be replayed.
pub(super) struct Outgoing {
    req: Request<Body>,
    replay: Option<Request<Body>>,
}

impl Outgoing {
    /// Keeps a copy for one replay when the request is safe to send twice.
    pub(super) fn new(req: Request<Body>) -> Outgoing {
        let replay = replayable(&req);
        Outgoing { req, replay }
    }

    /// A request that gets no replay (the second try of a re-routed request).
    pub(super) fn once(req: Request<Body>) -> Outgoing {
        Outgoing { req, replay: None }
    }
}

/// Sends on the given connection (or a pooled/new one). A request the
/// origin never saw (its connection was already closing) is retried on a
/// fresh connection. One it may have seen is replayed only if it is a safe
/// method without a body and the connection was a reused keep-alive one
/// (the origin closing an idle connection as we wrote to it); an order
/// POST is never sent twice.
pub(super) async fn forward(
    pool: &Pool<Sender>,
    origin_timeout: Duration,
    origin: SocketAddr,
    sender: Option<Sender>,
    outgoing: Outgoing,
) -> Result<(Response<Incoming>, Sender), Failure> {
    let Outgoing {
        mut req,
        mut replay,
    } = outgoing;
    let (mut sender, mut reused) = match sender {
        Some(s) => (s, true),
        None => match pool.get(origin).await {
            Ok(got) => got,
            Err(e) => return Err(Failure::unsent(e, req)),
        },
    };
    let deadline = tokio::time::Instant::now() + origin_timeout;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match tokio::time::timeout_at(deadline, sender.ready()).await {
            Err(_) => return Err(Failure::Timeout),
            // Closed before anything was sent: a new connection.
            Ok(Err(_)) => {}
            Ok(Ok(())) => {
                match tokio::time::timeout_at(deadline, sender.try_send_request(req)).await {
                    Err(_) => return Err(Failure::Timeout),
                    Ok(Ok(resp)) => return Ok((resp, sender)),
                    Ok(Err(mut e)) => match (e.take_message(), replay.take()) {
                        (Some(unsent), _) if attempts < 3 => req = unsent,
                        (None, Some(again)) if reused && attempts < 3 => {
                            tracing::debug!(%origin, error = %e.error(), "reused origin connection failed; replaying a safe request");
                            req = again;
                        }
                        _ => return Err(Failure::Broken(Box::new(e.into_error()))),
                    },
                }
            }
        }
        sender = match pool.connect(origin).await {
            Ok(s) => s,
            Err(e) => return Err(Failure::unsent(e, req)),
        };
        reused = false;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(method: http::Method, body: &'static [u8]) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri("/orders")
            .header("x-a", "1")
            .body(Either::Right(Full::new(Bytes::from_static(body))))
            .unwrap()
    }

    #[test]
    fn only_bodiless_safe_requests_get_a_replay_copy() {
        let copy = replayable(&req(http::Method::GET, b"")).unwrap();
        assert_eq!(copy.uri(), "/orders");
        assert_eq!(copy.headers()["x-a"], "1");
        assert!(replayable(&req(http::Method::HEAD, b"")).is_some());
        assert!(replayable(&req(http::Method::POST, b"")).is_none());
        assert!(replayable(&req(http::Method::GET, b"body")).is_none());
    }
}
