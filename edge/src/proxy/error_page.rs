//! The edge's own replies, with Cloudflare's statuses and error codes. Where
//! a failure came from decides the reply (the pingora habit):
//!
//! - the client's request: no Host header: 400;
//! - DNS (routing): unknown host: 530, error 1001 (DNS resolution error); host
//!   whose records are DNS-only: 403, error 1003 (a real client would reach
//!   the origin directly; the edge refuses traffic it does not proxy);
//!   proxied record that is not an address (CNAME): 530, error 1016;
//! - the origin: refused the connection: 521; connect timeout: 522; other
//!   connect failure: 523; no response head within `origin_timeout`: 524;
//!   broke the connection after the request was sent: 520.

use super::forward::Failure;
use crate::upstream::{Body, ConnectError};
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use std::net::SocketAddr;
use std::time::Duration;

/// Why the edge answers a request itself, by where it went wrong.
pub(super) enum EdgeError {
    /// The client sent no usable Host.
    NoHost,
    /// The host's records are DNS only.
    NotProxied,
    /// The proxied record is not an address.
    Unroutable,
    /// No record for the host.
    UnknownHost,
    /// The origin chosen for the request failed.
    Origin {
        origin: SocketAddr,
        failure: Failure,
    },
}

impl EdgeError {
    /// The reply status, Cloudflare's error code and its title.
    fn reply(&self) -> (StatusCode, u16, &'static str) {
        let dns_error = StatusCode::from_u16(530).unwrap_or(StatusCode::BAD_GATEWAY);
        match self {
            EdgeError::NoHost => (StatusCode::BAD_REQUEST, 400, "Bad request: no Host header"),
            EdgeError::NotProxied => (
                StatusCode::FORBIDDEN,
                1003,
                "Not proxied: the record is DNS only",
            ),
            EdgeError::Unroutable => (dns_error, 1016, "Origin DNS error"),
            EdgeError::UnknownHost => (dns_error, 1001, "DNS resolution error"),
            EdgeError::Origin { failure, .. } => {
                let (code, title) = match failure {
                    Failure::Connect(ConnectError::Refused, _) => (521, "Web server is down"),
                    Failure::Connect(ConnectError::Timeout, _) => (522, "Connection timed out"),
                    Failure::Connect(..) => (523, "Origin is unreachable"),
                    Failure::Timeout => (524, "A timeout occurred"),
                    Failure::Broken(_) => (520, "Web server is returning an unknown error"),
                };
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                (status, code, title)
            }
        }
    }

    /// The reply status, as counted in the metrics.
    pub(super) fn status(&self) -> u16 {
        self.reply().0.as_u16()
    }

    /// The `origin` label of the metrics: the origin when one was chosen.
    pub(super) fn origin(&self) -> Option<SocketAddr> {
        match self {
            EdgeError::Origin { origin, .. } => Some(*origin),
            _ => None,
        }
    }

    /// Warns of origin failures; the edge's refusals are the client's affair.
    pub(super) fn log(&self, host: &str, origin_timeout: Duration) {
        let EdgeError::Origin { origin, failure } = self else {
            return;
        };
        match failure {
            Failure::Connect(e, _) => {
                let code = self.reply().1;
                tracing::warn!(%origin, %host, error = %e, code, "origin connect failed")
            }
            Failure::Timeout => {
                tracing::warn!(%origin, %host, timeout = ?origin_timeout, "origin response timed out")
            }
            Failure::Broken(e) => {
                tracing::warn!(%origin, %host, error = %e, "origin connection broke")
            }
        }
    }

    /// A small Cloudflare-like error page: HTML, or JSON when `json`
    /// (the client sent `Accept: application/json`).
    pub(super) fn page(&self, host: &str, ray: &str, json: bool) -> Response<Body> {
        let (status, content_type, body) = self.content(host, ray, json);
        let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
        *resp.status_mut() = status;
        if status.canonical_reason().is_none() {
            // hyper would otherwise write `<none>` as the reason phrase.
            resp.extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(reason(
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

    /// The same page as a whole HTTP/1.1 response appended to `out`, for the
    /// proxy's own HTTP/1.1 path; `close` adds `Connection: close`.
    pub(super) fn write_page(
        &self,
        host: &str,
        ray: &str,
        json: bool,
        close: bool,
        out: &mut Vec<u8>,
    ) {
        use std::io::Write as _;
        let (status, content_type, body) = self.content(host, ray, json);
        let phrase = match status.canonical_reason() {
            Some(r) => r.as_bytes(),
            None => reason(status.as_u16()),
        };
        // Writes into a Vec cannot fail.
        let _ = write!(out, "HTTP/1.1 {} ", status.as_u16());
        out.extend_from_slice(phrase);
        let _ = write!(
            out,
            "\r\ncontent-type: {content_type}\r\nserver: cloudflare\r\ncache-control: no-store\r\n{}: {ray}\r\ndate: {}\r\ncontent-length: {}\r\n{}\r\n",
            crate::ray::HEADER,
            httpdate::fmt_http_date(std::time::SystemTime::now()),
            body.len(),
            if close { "connection: close\r\n" } else { "" },
        );
        out.extend_from_slice(body.as_bytes());
    }

    /// The page's status, content type and body.
    fn content(&self, host: &str, ray: &str, json: bool) -> (StatusCode, &'static str, String) {
        let (status, code, title) = self.reply();
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
        (status, content_type, body)
    }
}

/// Reason phrases for the non-standard statuses, as Cloudflare sends them.
fn reason(code: u16) -> &'static [u8] {
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

    fn origin_failure(failure: Failure) -> EdgeError {
        EdgeError::Origin {
            origin: "127.0.0.2:8080".parse().unwrap(),
            failure,
        }
    }

    #[test]
    fn where_a_failure_came_from_decides_the_reply() {
        let refused = origin_failure(Failure::Connect(ConnectError::Refused, None));
        assert_eq!(refused.reply().1, 521);
        assert_eq!(refused.origin(), "127.0.0.2:8080".parse().ok());
        let slow = origin_failure(Failure::Connect(ConnectError::Timeout, None));
        assert_eq!(slow.status(), 522);
        assert_eq!(origin_failure(Failure::Timeout).status(), 524);
        assert_eq!(EdgeError::UnknownHost.reply().1, 1001);
        assert_eq!(EdgeError::UnknownHost.status(), 530);
        assert_eq!(EdgeError::NotProxied.status(), 403);
        assert_eq!(EdgeError::NoHost.origin(), None);
    }

    #[test]
    fn pages_carry_the_code_and_the_ray() {
        let page = origin_failure(Failure::Timeout).page("shop.test", "abc-EDG", true);
        assert_eq!(page.status().as_u16(), 524);
        assert_eq!(page.headers()[crate::ray::HEADER], "abc-EDG");
        assert_eq!(page.headers()[header::CONTENT_TYPE], "application/json");
        assert!(page
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .is_some());
    }
}
