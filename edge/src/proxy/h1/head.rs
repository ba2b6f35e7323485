//! Request and response heads on the HTTP/1.1 path: parsed in place with
//! httparse, checked for what the path carries, and written out rewritten the
//! way `proxy::headers` rewrites them for hyper (hop-by-hop headers dropped,
//! `CF-Connecting-IP`, `X-Forwarded-*` and `CF-Ray` added to the request,
//! `Server: cloudflare` and `CF-Ray` on the reply).
//!
//! A request the path does not carry is [`Parsed::Unfit`]: the connection is
//! then handed to hyper with what was read, and hyper serves (or refuses) it
//! as before the path existed.

use super::body::Framing;

/// Headers per message; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// A request head longer than this goes to hyper (which allows more).
pub(super) const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// A request body longer than this goes to hyper (this path buffers bodies).
pub(super) const MAX_REQUEST_BODY: u64 = 64 * 1024;
/// A response head longer than this is the origin's error (520).
pub(super) const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// What parsing a head gave.
pub(super) enum Parsed<T> {
    /// More bytes are needed.
    Partial,
    Done(T),
    /// Requests only: not for this path (see the module doc).
    Unfit,
}

/// The request facts the proxy needs; its rewritten head is in `out`.
#[derive(Debug)]
pub(super) struct RequestHead {
    /// Bytes of the head in the client's buffer.
    pub(super) len: usize,
    pub(super) body_len: usize,
    pub(super) host: String,
    /// GET/HEAD/OPTIONS without a body: may be sent twice (see `forward`).
    pub(super) replayable: bool,
    /// A HEAD request: its response has no body whatever it says.
    pub(super) head: bool,
    /// The client asked to close after this request.
    pub(super) close: bool,
    /// The client asked for JSON (the edge's own replies are JSON then).
    pub(super) json: bool,
}

/// Hop-by-hop headers the request and response drop (`connection` is read
/// for its tokens, `transfer-encoding` is handled as framing).
fn hop_by_hop(name: &str) -> bool {
    crate::proxy::headers::HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// Headers the edge sets on the request itself (the client's are replaced).
fn set_by_edge(name: &str) -> bool {
    ["cf-connecting-ip", "cf-ray", "x-forwarded-proto"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A Content-Length value: digits only.
fn content_length(value: &[u8]) -> Option<u64> {
    let v = std::str::from_utf8(value).ok()?.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// The tokens of a `Connection` value; `None` if it is not text.
fn tokens(value: &[u8]) -> Option<impl Iterator<Item = &str>> {
    let v = std::str::from_utf8(value).ok()?;
    Some(v.split(',').map(str::trim).filter(|t| !t.is_empty()))
}

/// Parses the request at the start of `buf` and, once complete, writes the
/// head the origin gets to `out` (cleared first). `client_ip`: the client's
/// address as text.
pub(super) fn request(
    buf: &[u8],
    client_ip: &str,
    ray: &str,
    out: &mut Vec<u8>,
) -> Parsed<RequestHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD => return Parsed::Partial,
        // Too long, malformed or too many headers: hyper answers those.
        _ => return Parsed::Unfit,
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        // HTTP/1.0 and its keep-alive rules are hyper's.
        return Parsed::Unfit;
    };
    if method == "CONNECT" || !path.starts_with('/') {
        return Parsed::Unfit;
    }
    let mut host = None;
    let mut body_len: Option<u64> = None;
    let mut close = false;
    let mut json = None;
    let mut forwarded_for = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Parsed::Unfit;
            }
            let Some(value) = std::str::from_utf8(h.value).ok() else {
                return Parsed::Unfit;
            };
            host = Some(value);
        } else if name.eq_ignore_ascii_case("content-length") {
            match (content_length(h.value), body_len) {
                (Some(n), None) => body_len = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Unfit,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
        {
            // Streamed bodies, 100-continue and upgrades are hyper's.
            return Parsed::Unfit;
        } else if name.eq_ignore_ascii_case("connection") {
            let Some(tokens) = tokens(h.value) else {
                return Parsed::Unfit;
            };
            for t in tokens {
                if t.eq_ignore_ascii_case("close") {
                    close = true;
                } else if !t.eq_ignore_ascii_case("keep-alive") {
                    // Headers named to be dropped: hyper's path does that.
                    return Parsed::Unfit;
                }
            }
        } else if name.eq_ignore_ascii_case("accept") {
            json.get_or_insert_with(|| {
                std::str::from_utf8(h.value).is_ok_and(|v| v.contains("application/json"))
            });
        } else if name.eq_ignore_ascii_case("x-forwarded-for") && forwarded_for.is_none() {
            forwarded_for = Some(h.value);
        }
    }
    let Some(host) = host.and_then(crate::proxy::routing::normalize_host) else {
        return Parsed::Unfit;
    };
    let body_len = body_len.unwrap_or(0);
    if body_len > MAX_REQUEST_BODY {
        return Parsed::Unfit;
    }
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in req.headers.iter() {
        let name = h.name;
        if hop_by_hop(name) || set_by_edge(name) || name.eq_ignore_ascii_case("x-forwarded-for") {
            continue;
        }
        header(out, name.as_bytes(), h.value);
    }
    header(out, b"cf-connecting-ip", client_ip.as_bytes());
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prev) = forwarded_for {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client_ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    header(out, crate::ray::HEADER.as_bytes(), ray.as_bytes());
    out.extend_from_slice(b"x-forwarded-proto: http\r\n\r\n");
    let safe = matches!(method, "GET" | "HEAD" | "OPTIONS");
    Parsed::Done(RequestHead {
        len,
        body_len: body_len as usize,
        host,
        replayable: safe && body_len == 0,
        head: method == "HEAD",
        close,
        json: json.unwrap_or(false),
    })
}

/// The response facts the proxy needs; its rewritten head is in `out`.
#[derive(Debug)]
pub(super) struct ResponseHead {
    /// Bytes of the head in the origin connection's buffer.
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) framing: Framing,
    /// The origin keeps the connection open after this response.
    pub(super) keep_alive: bool,
    /// The reply says `Connection: close`: the client's connection ends
    /// after it.
    pub(super) last: bool,
}

/// What a response head at the start of `buf` is.
pub(super) enum Response {
    /// A 1xx other than 101: passed over (its length in `buf`).
    Informational(usize),
    Final(ResponseHead),
}

/// Why a response head is not one this path can pass on (a 520).
#[derive(Debug, thiserror::Error)]
pub(super) enum BadResponse {
    #[error("malformed response head from the origin: {0}")]
    Malformed(httparse::Error),
    #[error("response head from the origin longer than {MAX_RESPONSE_HEAD} bytes")]
    TooLong,
    #[error("the origin switched protocols on a request that did not ask to")]
    Upgrade,
    #[error("invalid Content-Length from the origin")]
    Length,
}

/// Parses the response at the start of `buf` to a request (`head`: it was a
/// HEAD request) and, once complete, writes the head the client gets to
/// `out` (cleared first); `close`: the client connection closes after it.
pub(super) fn response(
    buf: &[u8],
    head: bool,
    ray: &str,
    close: bool,
    out: &mut Vec<u8>,
) -> Result<Parsed<Response>, BadResponse> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => {
            return Ok(Parsed::Partial)
        }
        Ok(httparse::Status::Partial) => return Err(BadResponse::TooLong),
        Err(e) => return Err(BadResponse::Malformed(e)),
    };
    let status = resp.code.unwrap_or(0);
    match status {
        101 => return Err(BadResponse::Upgrade),
        100..=199 => return Ok(Parsed::Done(Response::Informational(len))),
        _ => {}
    }
    let mut chunked = false;
    let mut delimited = false;
    let mut length: Option<u64> = None;
    let (mut close_token, mut keep_token, mut listed) = (false, false, false);
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides: chunked, or the body runs to the close.
            let last = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim);
            chunked = last.is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
            delimited = !chunked;
        } else if name.eq_ignore_ascii_case("content-length") {
            match (content_length(h.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(BadResponse::Length),
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value).into_iter().flatten() {
                if t.eq_ignore_ascii_case("close") {
                    close_token = true;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    keep_token = true;
                } else {
                    listed = true;
                }
            }
        }
    }
    // HTTP/1.1 keeps the connection unless told to close; 1.0 the reverse.
    let keep_alive = !close_token && (resp.version == Some(1) || keep_token);
    let framing = if head || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::chunked()
    } else if delimited {
        Framing::UntilClose
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa3(status).as_slice());
    out.push(b' ');
    match resp.reason {
        Some(r) if !r.is_empty() => out.extend_from_slice(r.as_bytes()),
        _ => out.extend_from_slice(
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .as_bytes(),
        ),
    }
    out.extend_from_slice(b"\r\n");
    let named: Vec<&str> = if listed {
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .filter_map(|h| tokens(h.value))
            .flatten()
            .collect()
    } else {
        Vec::new()
    };
    for h in resp.headers.iter() {
        let name = h.name;
        if (hop_by_hop(name) && !name.eq_ignore_ascii_case("transfer-encoding"))
            || name.eq_ignore_ascii_case("server")
            || name.eq_ignore_ascii_case(crate::ray::HEADER)
            || named.iter().any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        header(out, name.as_bytes(), h.value);
    }
    header(out, crate::ray::HEADER.as_bytes(), ray.as_bytes());
    out.extend_from_slice(b"server: cloudflare\r\n");
    let last = close || matches!(framing, Framing::UntilClose);
    if last {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Parsed::Done(Response::Final(ResponseHead {
        len,
        status,
        framing,
        keep_alive,
        last,
    })))
}

/// A status code (100..=999) as three digits.
fn itoa3(n: u16) -> [u8; 3] {
    let n = n.min(999);
    [
        b'0' + (n / 100) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(text: &str) -> (Parsed<RequestHead>, String) {
        let mut out = Vec::new();
        let p = request(text.as_bytes(), "10.0.0.9", "abc-EDG", &mut out);
        (p, String::from_utf8(out).unwrap())
    }

    fn done(p: Parsed<RequestHead>) -> RequestHead {
        match p {
            Parsed::Done(h) => h,
            Parsed::Partial => panic!("partial"),
            Parsed::Unfit => panic!("unfit"),
        }
    }

    #[test]
    fn a_request_is_rewritten_as_the_hyper_path_rewrites_it() {
        let text = "POST /orders HTTP/1.1\r\nHost: Shop.Test:8080\r\nContent-Length: 2\r\n\
             Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nCF-Ray: forged\r\n\
             X-Forwarded-For: 1.2.3.4\r\nAccept: application/json\r\n\r\n{}";
        let (p, out) = req(text);
        let h = done(p);
        assert_eq!(h.len, text.len() - 2, "the head ends before the body");
        assert_eq!(h.host, "shop.test");
        assert_eq!(h.body_len, 2);
        assert!(!h.replayable && !h.close && h.json && !h.head);
        assert_eq!(
            out,
            "POST /orders HTTP/1.1\r\nHost: Shop.Test:8080\r\nContent-Length: 2\r\n\
             Accept: application/json\r\ncf-connecting-ip: 10.0.0.9\r\n\
             x-forwarded-for: 1.2.3.4, 10.0.0.9\r\ncf-ray: abc-EDG\r\n\
             x-forwarded-proto: http\r\n\r\n"
        );
    }

    #[test]
    fn what_the_path_does_not_carry_goes_to_hyper() {
        for text in [
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-private\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert!(matches!(req(text).0, Parsed::Unfit), "{text:?}");
        }
        assert!(matches!(
            req("GET / HTTP/1.1\r\nHost: a\r\n").0,
            Parsed::Partial
        ));
        let huge = format!("GET / HTTP/1.1\r\nX-Big: {}", "y".repeat(MAX_REQUEST_HEAD));
        assert!(matches!(req(&huge).0, Parsed::Unfit));
    }

    #[test]
    fn safe_bodiless_requests_may_be_replayed_and_close_is_seen() {
        let h = done(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").0);
        assert!(h.replayable && h.close && !h.json);
        let h = done(req("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").0);
        assert!(h.replayable && h.head);
    }

    fn resp(text: &str, head: bool, close: bool) -> (ResponseHead, String) {
        let mut out = Vec::new();
        match response(text.as_bytes(), head, "abc-EDG", close, &mut out).unwrap() {
            Parsed::Done(Response::Final(h)) => (h, String::from_utf8(out).unwrap()),
            _ => panic!("not a final response"),
        }
    }

    #[test]
    fn a_response_is_rewritten_and_its_framing_read() {
        let text = "HTTP/1.1 201 Created\r\nServer: axum\r\nContent-Length: 2\r\nX-Instance: a\r\n\
             Keep-Alive: timeout=5\r\n\r\nok";
        let (h, out) = resp(text, false, false);
        assert_eq!((h.status, h.keep_alive), (201, true));
        assert_eq!(h.framing, Framing::Length(2));
        assert_eq!(
            out,
            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Instance: a\r\n\
             cf-ray: abc-EDG\r\nserver: cloudflare\r\n\r\n"
        );
        assert_eq!(h.len, text.len() - 2, "the head ends before the body");
        let (h, out) = resp(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            false,
            true,
        );
        assert_eq!(h.framing, Framing::chunked());
        assert!(!h.keep_alive);
        assert!(out.contains("Transfer-Encoding: chunked\r\n"));
        assert!(out.ends_with("connection: close\r\n\r\n"));
        let (h, _) = resp("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, false);
        assert_eq!(h.framing, Framing::Empty);
        let (h, out) = resp("HTTP/1.0 200 OK\r\n\r\n", false, false);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        assert!(out.ends_with("connection: close\r\n\r\n"));
        let (_, out) = resp("HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n", false, false);
        assert!(out.starts_with("HTTP/1.1 599 \r\n"));
    }

    #[test]
    fn informational_responses_are_passed_over_and_bad_ones_refused() {
        let mut out = Vec::new();
        let hints = b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n";
        let r = response(hints, false, "r", false, &mut out);
        assert!(matches!(r, Ok(Parsed::Done(Response::Informational(n))) if n == hints.len()));
        let r = response(
            b"HTTP/1.1 101 Switching\r\n\r\n",
            false,
            "r",
            false,
            &mut out,
        );
        assert!(matches!(r, Err(BadResponse::Upgrade)));
        let r = response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false,
            "r",
            false,
            &mut out,
        );
        assert!(matches!(r, Err(BadResponse::Length)));
        let r = response(b"HTTP/1.1 2x0 OK\r\n\r\n", false, "r", false, &mut out);
        assert!(matches!(r, Err(BadResponse::Malformed(_))));
    }
}
