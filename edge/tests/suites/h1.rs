//! The proxy's own HTTP/1.1 path against scripted origins (raw sockets that
//! answer exactly what a test says) and hyper's client as the peer that
//! checks the framing: bodies pass through as the origin framed them, the
//! origin connection is kept, the keep-alive race is handled as on the hyper
//! path, and requests the path does not carry are served by hyper on the
//! same client connection.

use crate::util::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a scripted origin saw: per accepted connection, the requests' heads.
#[derive(Default)]
struct Seen {
    conns: Vec<Vec<String>>,
    /// Connections the origin has closed (its side dropped).
    closed: usize,
}

/// What a scripted origin does with one request (`conn`: accepted
/// connection number, `n`: request number on it).
type Script = fn(conn: usize, n: usize, head: &str) -> Reply;

enum Reply {
    /// Write these bytes and read the next request.
    Bytes(Vec<u8>),
    /// Write these bytes, then close the connection.
    ThenClose(Vec<u8>),
    /// Close without answering.
    Close,
}

/// Serves `listener` by `script` until the test ends; records every head.
fn scripted(listener: TcpListener, script: Script) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let conn = {
                let mut s = record.lock().unwrap();
                s.conns.push(Vec::new());
                s.conns.len() - 1
            };
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                serve_one(&mut stream, conn, &record, script).await;
                drop(stream);
                record.lock().unwrap().closed += 1;
            });
        }
    });
    seen
}

/// One origin connection, by `script`, until it says close or the peer does.
async fn serve_one(stream: &mut TcpStream, conn: usize, record: &Mutex<Seen>, script: Script) {
    let mut buf = Vec::new();
    for n in 0.. {
        let Some(head) = read_request(stream, &mut buf).await else {
            return;
        };
        record.lock().unwrap().conns[conn].push(head.clone());
        match script(conn, n, &head) {
            Reply::Bytes(b) => {
                if stream.write_all(&b).await.is_err() {
                    return;
                }
            }
            Reply::ThenClose(b) => {
                let _ = stream.write_all(&b).await;
                return;
            }
            Reply::Close => return,
        }
    }
}

/// Waits until the scripted origin has closed `n` connections.
async fn closed(seen: &Mutex<Seen>, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().closed < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the origin never closed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One request's head (its Content-Length body read and dropped).
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut more = [0u8; 4096];
                let n = stream.read(&mut more).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&more[..n]);
            }
            buf.drain(..end + 4 + len);
            return Some(head);
        }
        let mut more = [0u8; 4096];
        let n = stream.read(&mut more).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&more[..n]);
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nX-Instance: a\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// hyper's client on one new connection to the proxy.
async fn client_conn<B>(edge: &TestEdge) -> SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(edge.proxy).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Sends `req` and reads the whole reply: status, headers, body.
async fn exchange<B>(
    sender: &mut SendRequest<B>,
    req: http::Request<B>,
) -> (u16, http::HeaderMap, Bytes)
where
    B: hyper::body::Body + Send + 'static,
{
    sender.ready().await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("a reply in time")
        .expect("a reply");
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("the whole body").to_bytes();
    (status, parts.headers, body)
}

fn get(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(path)
        .header("host", HOST)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// An order POST with a small JSON body.
fn order() -> http::Request<Full<Bytes>> {
    http::Request::post("/orders")
        .header("host", HOST)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_pass_through_as_the_origin_framed_them_on_one_kept_connection() {
    let (edge, listener) = EdgeBuilder::new().with_listener().await;
    let seen = scripted(listener, |_, n, _| match n {
        // Chunked, split oddly, with a trailer.
        0 => Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: origin\r\n\r\n\
              5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Sum: 1\r\n\r\n"
                .to_vec(),
        ),
        // An informational head first, then a body far past the buffers.
        1 => {
            let body = "x".repeat(200_000);
            let mut b = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n".to_vec();
            b.extend_from_slice(&ok(&body));
            Reply::Bytes(b)
        }
        // No length: the body runs to the origin's close.
        _ => Reply::ThenClose(b"HTTP/1.1 200 OK\r\nX-Instance: a\r\n\r\nto the end".to_vec()),
    });
    let mut c = client_conn(&edge).await;
    let (status, headers, body) = exchange(&mut c, get("/one")).await;
    assert_eq!((status, &body[..]), (200, &b"hello, world"[..]));
    assert_eq!(headers["server"], "cloudflare");
    assert!(headers.contains_key("cf-ray"));
    let (status, _, body) = exchange(&mut c, get("/two")).await;
    assert_eq!((status, body.len()), (200, 200_000));
    let (status, headers, body) = exchange(&mut c, get("/three")).await;
    assert_eq!((status, &body[..]), (200, &b"to the end"[..]));
    assert_eq!(headers["connection"], "close");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.conns.len(),
        1,
        "one origin connection carried all three"
    );
    let first = &seen.conns[0][0];
    assert!(first.starts_with("GET /one HTTP/1.1\r\n"), "{first}");
    for header in [
        "cf-connecting-ip: 127.0.0.1",
        "x-forwarded-for: 127.0.0.1",
        "cf-ray: ",
        "x-forwarded-proto: http",
    ] {
        assert!(first.contains(header), "{header} missing from {first}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_the_origin_closed_while_idle_carries_no_request() {
    // Each connection answers one request and closes, as an origin shutting
    // down gracefully closes its idle connections.
    let (edge, listener) = EdgeBuilder::new().with_listener().await;
    let seen = scripted(listener, |_, _, _| Reply::ThenClose(ok("done")));
    let mut c = client_conn(&edge).await;
    for round in 0..3 {
        let (status, _, body) = exchange(&mut c, get("/")).await;
        assert_eq!((status, &body[..]), (200, &b"done"[..]));
        // The close must reach the edge (idle, it sees it at once) before
        // the next request: else this is the keep-alive race proper, where
        // an order may not be sent twice.
        closed(&seen, 2 * round + 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, _, _) = exchange(&mut c, order()).await;
        assert_eq!(
            status, 200,
            "an order on a closed kept connection is sent on a new one"
        );
        closed(&seen, 2 * round + 2).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.conns.len(), 6);
    assert!(seen.conns.iter().all(|c| c.len() == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_connection_dying_unanswered_replays_a_get_and_fails_a_post_once() {
    // The second request on every origin connection is read and dropped.
    let (edge, listener) = EdgeBuilder::new().with_listener().await;
    let seen = scripted(listener, |_, n, _| {
        if n == 0 {
            Reply::Bytes(ok("first"))
        } else {
            Reply::Close
        }
    });
    let mut c = client_conn(&edge).await;
    assert_eq!(exchange(&mut c, get("/")).await.0, 200);
    let (status, _, body) = exchange(&mut c, get("/again")).await;
    assert_eq!(
        (status, &body[..]),
        (200, &b"first"[..]),
        "a GET is replayed on a new connection"
    );
    let (status, _, _) = exchange(&mut c, order()).await;
    assert_eq!(
        status, 520,
        "an order the origin may have seen is not sent twice"
    );
    let seen = seen.lock().unwrap();
    let posts = seen
        .conns
        .iter()
        .flatten()
        .filter(|h| h.starts_with("POST"))
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_path_does_not_carry_are_served_by_hyper_on_the_same_connection() {
    let (edge, _a) = EdgeBuilder::new().with_origin(Behaviour::Answer).await;
    type Chunks = StreamBody<
        futures::stream::Iter<
            std::vec::IntoIter<Result<hyper::body::Frame<Bytes>, std::io::Error>>,
        >,
    >;
    let mut c = client_conn::<http_body_util::Either<Full<Bytes>, Chunks>>(&edge).await;
    let plain = |path: &str| {
        http::Request::get(path)
            .header("host", HOST)
            .body(http_body_util::Either::Left(Full::new(Bytes::new())))
            .unwrap()
    };
    let (status, headers, _) = exchange(&mut c, plain("/")).await;
    assert_eq!((status, instance_of(&headers).as_deref()), (200, Some("a")));
    // No length: hyper's client sends it chunked, which this path hands over.
    let frames = vec![
        Ok(hyper::body::Frame::data(Bytes::from_static(b"{\"a\":"))),
        Ok(hyper::body::Frame::data(Bytes::from_static(b"1}"))),
    ];
    let chunked = http::Request::post("/orders")
        .header("host", HOST)
        .body(http_body_util::Either::Right(StreamBody::new(
            futures::stream::iter(frames),
        )))
        .unwrap();
    let (status, headers, _) = exchange(&mut c, chunked).await;
    assert_eq!((status, instance_of(&headers).as_deref()), (200, Some("a")));
    let (status, headers, _) = exchange(&mut c, plain("/after")).await;
    assert_eq!((status, instance_of(&headers).as_deref()), (200, Some("a")));
    assert_eq!(headers["server"], "cloudflare");

    // HTTP/1.0 and a missing Host, byte by byte.
    let reply = raw_exchange(&edge, b"GET / HTTP/1.0\r\nHost: shop.handover.test\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
    let reply = raw_exchange(&edge, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    let reply = raw_exchange(&edge, b"GARBAGE\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
}

/// Writes `request` on a new connection, half-closes, reads to the end.
async fn raw_exchange(edge: &TestEdge, request: &[u8]) -> String {
    let mut s = TcpStream::connect(edge.proxy).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if out.windows(4).any(|w| w == b"\r\n\r\n") && request.starts_with(b"GET / HTTP/1.1") {
                break;
            }
        }
    });
    let _ = read.await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let (edge, listener) = EdgeBuilder::new().with_listener().await;
    let _seen = scripted(listener, |_, _, head| {
        let path = head.split(' ').nth(1).unwrap_or("?").to_string();
        Reply::Bytes(ok(&path))
    });
    let mut s = TcpStream::connect(edge.proxy).await.unwrap();
    let three: String = ["/1", "/2", "/3"]
        .iter()
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"))
        .collect();
    s.write_all(three.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).ends_with("/3") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("three replies in time")
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    let bodies: Vec<&str> = text.split("\r\n\r\n").skip(1).map(|b| &b[..2]).collect();
    assert_eq!(bodies, ["/1", "/2", "/3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_in_flight_at_sigterm_says_it_is_the_last() {
    let (mut edge, slow) = EdgeBuilder::new()
        .with_origin(Behaviour::Slow(Duration::from_millis(1000)))
        .await;
    let mut c = client_conn(&edge).await;
    let in_flight = tokio::spawn(async move { exchange(&mut c, get("/")).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while slow.hits() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "request never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = tokio::task::spawn_blocking(move || (edge.terminate(), edge));
    let (status, headers, _) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        headers["connection"], "close",
        "the client must not send another request on it"
    );
    assert!(stopped.await.unwrap().0.expect("edge exits").success());
}
