//! Clients of the proxy: fresh connections, a pooled one, or exactly one
//! keep-alive connection.

use super::HOST;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

/// A reqwest client that opens a new connection per request (no pooling),
/// so every request is a fresh routing decision at the edge.
pub fn fresh_client() -> reqwest::Client {
    client_keeping(0)
}

/// A keep-alive client (one pooled connection reused).
pub fn pooled_client() -> reqwest::Client {
    client_keeping(1)
}

fn client_keeping(idle_connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(idle_connections)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET / through the proxy with `host` as the Host header.
pub fn to_proxy(
    client: &reqwest::Client,
    proxy: SocketAddr,
    host: &str,
) -> reqwest::RequestBuilder {
    client.get(format!("http://{proxy}/")).header("host", host)
}

/// GET through the proxy with the test Host; returns (status, X-Instance).
pub async fn via_proxy(client: &reqwest::Client, proxy: SocketAddr) -> (u16, Option<String>) {
    let resp = to_proxy(client, proxy, HOST)
        .send()
        .await
        .expect("request through the edge");
    let status = resp.status().as_u16();
    let instance = instance_of(resp.headers());
    let _ = resp.bytes().await;
    (status, instance)
}

/// Which origin instance answered (`X-Instance`), if any.
pub fn instance_of(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("x-instance")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Exactly one client connection to the proxy, reused for every request
/// (reqwest's pool may open a second one when it races the first's return).
pub struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>,
}

impl KeepAlive {
    pub async fn connect(proxy: SocketAddr) -> KeepAlive {
        let stream = tokio::net::TcpStream::connect(proxy)
            .await
            .expect("connect to the proxy");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        KeepAlive { sender }
    }

    /// GET / with the test Host; panics if the connection itself broke.
    pub async fn get(&mut self) -> (u16, Option<String>) {
        self.send(hyper::Method::GET).await
    }

    /// `method` / with the test Host and an empty body.
    pub async fn send(&mut self, method: hyper::Method) -> (u16, Option<String>) {
        use http_body_util::BodyExt;
        tokio::time::timeout(Duration::from_secs(30), self.sender.ready())
            .await
            .expect("connection ready in time")
            .expect("client connection to the edge still open");
        let req = hyper::Request::builder()
            .method(method)
            .uri("/")
            .header("host", HOST)
            .body(http_body_util::Empty::new())
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(30), self.sender.send_request(req))
            .await
            .expect("reply in time")
            .expect("reply on the same connection");
        let status = resp.status().as_u16();
        let instance = instance_of(resp.headers());
        let _ = resp.into_body().collect().await;
        (status, instance)
    }
}

/// One `GET /` with `host` on a new raw TCP connection: the first bytes of
/// the reply, or the error the socket gave (a reset shows as
/// `ErrorKind::ConnectionReset`, a plain close as `Ok` with nothing read).
pub async fn raw_get(proxy: SocketAddr, host: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(proxy).await?;
    raw_get_on(&mut stream, host).await
}

/// `GET /` with `host` on `stream`, as [`raw_get`].
pub async fn raw_get_on(stream: &mut tokio::net::TcpStream, host: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
