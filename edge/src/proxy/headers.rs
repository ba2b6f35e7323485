//! What crosses the hop: the request as the origin sees it (hop-by-hop
//! headers dropped, `CF-Connecting-IP`, `X-Forwarded-*`, `CF-Ray`) and the
//! reply as the client sees it (`Server: cloudflare`).

use crate::upstream::Body;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, Uri};
use http_body_util::Either;
use hyper::body::Incoming;
use std::net::SocketAddr;

// Parsed once, not from text on every request.
const CF_RAY: HeaderName = HeaderName::from_static(crate::ray::HEADER);
const CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Headers that describe one hop and must not be forwarded.
pub(super) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Drops the hop-by-hop headers and those `Connection` names. Most messages
/// carry none, and one pass over their few names costs less than a lookup
/// per listed name (measured with perf on the proxy path).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
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

/// What the edge adds to every request from one client connection: its
/// address as a header value, made once per connection, not per request.
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    ip: Option<HeaderValue>,
    ip_text: String,
}

impl Peer {
    pub(super) fn new(addr: SocketAddr) -> Peer {
        let ip_text = addr.ip().to_string();
        Peer {
            addr,
            ip: HeaderValue::from_str(&ip_text).ok(),
            ip_text,
        }
    }

    /// The client's IP as text.
    pub(super) fn ip_str(&self) -> &str {
        &self.ip_text
    }
}

/// The client's request as the origin gets it.
pub(super) fn prepare_request(
    req: Request<Incoming>,
    ray: &HeaderValue,
    peer: &Peer,
) -> Request<Body> {
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
    if let Some(v) = &peer.ip {
        parts.headers.insert(CF_CONNECTING_IP, v.clone());
        let xff = match parts
            .headers
            .get(X_FORWARDED_FOR)
            .and_then(|h| h.to_str().ok())
        {
            Some(prev) => {
                let ip = v.to_str().unwrap_or_default();
                HeaderValue::from_str(&format!("{prev}, {ip}")).unwrap_or_else(|_| v.clone())
            }
            None => v.clone(),
        };
        parts.headers.insert(X_FORWARDED_FOR, xff);
    }
    parts.headers.insert(CF_RAY, ray.clone());
    parts
        .headers
        .insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    Request::from_parts(parts, Either::Left(body))
}

/// The origin's reply as the client gets it.
pub(super) fn prepare_response(resp: Response<Incoming>, ray: &HeaderValue) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(CF_RAY, ray.clone());
    parts
        .headers
        .insert(header::SERVER, HeaderValue::from_static("cloudflare"));
    Response::from_parts(parts, Either::Left(body))
}

/// Whether the client asked for JSON (then the edge's own replies are JSON).
pub(super) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
