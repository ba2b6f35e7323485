//! The bytes on the wire: a request encoded into one buffer, a reply head
//! parsed in place. Pure functions, no I/O: [`super::Conn`] does the reading
//! and writing.

use super::Fail;
use handover_contract::json;

/// What the status line and headers said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub instance: Option<String>,
    /// The server closes the connection after this reply.
    pub close: bool,
}

/// How the reply body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A request's request line, the headers the transport adds, and the body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub host: &'a [u8],
    /// Empty: no `User-Agent` line (the caller's headers carry one).
    pub user_agent: &'a str,
    pub body: Option<&'a [u8]>,
}

/// The `Content-Type` [`Conn::send`] and [`encode`] give a body.
pub const JSON_CONTENT_TYPE: &[u8] = b"content-type: application/json\r\n";

/// The header lines a request gets when the caller names none: a body is JSON.
pub(super) fn default_headers(req: &Request<'_>) -> &'static [u8] {
    if req.body.is_some() {
        JSON_CONTENT_TYPE
    } else {
        b""
    }
}

/// The whole request into `out` (reused): one write on the socket; a body
/// is sent as JSON.
pub fn encode(out: &mut Vec<u8>, req: &Request<'_>) {
    encode_with(out, req, default_headers(req));
}

/// [`encode`] with the caller's header lines (`name: value\r\n` each)
/// after `host` and `user-agent`, then the framing: `content-length` for a
/// body, and `content-length: 0` for a bodiless POST, PUT or PATCH (servers
/// may refuse those without one).
pub fn encode_with(out: &mut Vec<u8>, req: &Request<'_>, headers: &[u8]) {
    out.clear();
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(req.host);
    if !req.user_agent.is_empty() {
        out.extend_from_slice(b"\r\nuser-agent: ");
        out.extend_from_slice(req.user_agent.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(headers);
    match req.body {
        Some(body) => {
            out.extend_from_slice(b"content-length: ");
            json::push_u64(out, body.len() as u64);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        }
        None if matches!(req.method, "POST" | "PUT" | "PATCH") => {
            out.extend_from_slice(b"content-length: 0\r\n\r\n");
        }
        None => out.extend_from_slice(b"\r\n"),
    }
}

pub(super) fn parse_hex(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, b| {
        let d = (*b as char).to_digit(16)?;
        Some(acc * 16 + u64::from(d))
    })
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Where the blank line ending the head starts: scans for `\n` only and
/// looks back, cheaper than comparing every 4-byte window.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 3;
    while from < buf.len() {
        let i = from + buf[from..].iter().position(|b| *b == b'\n')?;
        if &buf[i - 3..=i] == b"\r\n\r\n" {
            return Some(i - 3);
        }
        from = i + 1;
    }
    None
}

/// Parses a complete reply head from the start of `buf`: `None` while it is
/// incomplete, else the head, how its body ends and the bytes it took.
pub fn parse_head(
    buf: &[u8],
    instance_header: &str,
    head_only: bool,
) -> Result<Option<(Head, Body, usize)>, Fail> {
    let Some(end) = head_end(buf) else {
        return Ok(None);
    };
    let mut lines = buf[..end]
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii_end());
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 {
        return Err(Fail::Bad("not an HTTP/1 status line"));
    }
    let status = parse_decimal(&status_line[9..12])
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or(Fail::Bad("bad status code"))?;
    let mut head = Head {
        status,
        instance: None,
        close: false,
    };
    let mut length = None;
    let mut chunked = false;
    let mut close = status_line.starts_with(b"HTTP/1.0");
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Err(Fail::Bad("header without a colon"));
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(parse_decimal(value).ok_or(Fail::Bad("bad content-length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        } else if head.instance.is_none() && name.eq_ignore_ascii_case(instance_header.as_bytes()) {
            head.instance = std::str::from_utf8(value).ok().map(str::to_string);
        }
    }
    let body = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Body::Length(0)
    } else if chunked {
        Body::Chunked
    } else {
        match length {
            Some(n) => Body::Length(n),
            None => Body::UntilClose,
        }
    };
    head.close = close;
    Ok(Some((head, body, end + 4)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_whole_request() {
        let mut out = Vec::new();
        encode(
            &mut out,
            &Request {
                method: "POST",
                path_and_query: "/orders",
                host: b"shop:8080",
                user_agent: "ua/1",
                body: Some(b"{}"),
            },
        );
        assert_eq!(
            out,
            b"POST /orders HTTP/1.1\r\nhost: shop:8080\r\nuser-agent: ua/1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn parses_heads_and_their_body_framing() {
        let r =
            b"HTTP/1.1 201 Created\r\nX-Instance: b\r\ncontent-length: 12\r\n\r\n{\"ok\":true}x";
        let (head, body, used) = parse_head(r, "x-instance", false).unwrap().unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(head.instance.as_deref(), Some("b"));
        assert_eq!(body, Body::Length(12));
        assert_eq!(&r[used..], b"{\"ok\":true}x");
        let c = b"HTTP/1.1 500 x\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(
            parse_head(c, "x-instance", false).unwrap().unwrap().1,
            Body::Chunked
        );
        let n = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            parse_head(n, "x-instance", false).unwrap().unwrap().1,
            Body::UntilClose
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n", "x", false)
            .unwrap()
            .is_none());
        assert!(parse_head(b"SSH-2.0\r\n\r\n", "x", false).is_err());
        assert_eq!(head_end(b"a\r\n\r\nb"), Some(1));
        assert_eq!(head_end(b"\r\n\r\n"), Some(0));
        assert_eq!(head_end(b"\n\n\r\n\n\r\r\n"), None);
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n", "x", false).is_err());
    }

    #[test]
    fn encode_with_writes_the_callers_headers_and_framing() {
        let req = |method, user_agent, body| Request {
            method,
            path_and_query: "/kv/r-1?x=1",
            host: b"h",
            user_agent,
            body,
        };
        let mut out = Vec::new();
        encode_with(
            &mut out,
            &req("PUT", "", Some(b"v=1")),
            b"User-Agent: mine\r\ncontent-type: text/plain\r\n",
        );
        assert_eq!(
            out,
            b"PUT /kv/r-1?x=1 HTTP/1.1\r\nhost: h\r\nUser-Agent: mine\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nv=1"
        );
        encode_with(&mut out, &req("DELETE", "ua", None), b"x-a: 1\r\n");
        assert_eq!(
            out,
            b"DELETE /kv/r-1?x=1 HTTP/1.1\r\nhost: h\r\nuser-agent: ua\r\nx-a: 1\r\n\r\n"
        );
        // A bodiless write still says how long its body is.
        encode_with(&mut out, &req("POST", "ua", None), b"");
        assert!(out.ends_with(b"user-agent: ua\r\ncontent-length: 0\r\n\r\n"));
        // The default headers are the JSON content type, only with a body.
        let mut plain = Vec::new();
        encode(&mut plain, &req("POST", "ua", Some(b"{}")));
        encode_with(&mut out, &req("POST", "ua", Some(b"{}")), JSON_CONTENT_TYPE);
        assert_eq!(out, plain);
    }
}
