//! The HTTP side: keep-alive connections, the `--resolve` rewriting, and
//! one exchange with its timeout.
//!
//! Plain `http` runs on the feeder's own HTTP/1.1 connections
//! ([`crate::http1`]), one per worker and reused for every request it sends
//! (no pool lookup, no per-request task or channel: measurably cheaper at
//! tens of thousands of requests per second, see `scripts/bench-feeder.sh`).
//! `https` goes through one shared reqwest client (TLS), its pool holding at
//! most one connection per worker. Set-up requests (`GET /users`) over
//! plain `http` use a one-off hyper connection.
//!
//! The instance that answered is read from a reply header, or, when the
//! request template says `instance_json`, from the reply body (which is then
//! read, up to [`REPLY_BODY_LIMIT`]; otherwise it is only drained).

use crate::http1;
use crate::options::ClientKind;
use crate::template::{pointer::Pointer, ReplyInstance, REPLY_BODY_LIMIT};
use crate::workload::Request;
use crate::{Error, Options, Workload};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use url::Url;

const USER_AGENT: &str = concat!("handover-feeder/", env!("CARGO_PKG_VERSION"));

#[derive(Debug)]
enum Client {
    /// Each worker dials its own keep-alive connection to `host:port` (the
    /// `--resolve` address when one applies).
    Direct {
        host: String,
        port: u16,
    },
    Reqwest(reqwest::Client),
}

/// Where and how requests go.
#[derive(Debug)]
pub struct Transport {
    client: Client,
    /// The URL requests are built from (the target, or its `--resolve` address).
    base: Url,
    /// The Host header every request carries.
    host: HeaderValue,
    /// The reply header naming the instance (ignored with `instance_json`).
    instance_header: HeaderName,
    /// The JSON pointer into the reply body naming the instance.
    instance_json: Option<Pointer>,
    timeout: Duration,
}

/// A worker's own connection (plain http only); re-dialled when it breaks.
pub use crate::http1::Conn;

/// What came back, if anything.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: Option<u16>,
    pub instance: Option<String>,
}

impl Transport {
    pub fn new(opts: &Options) -> Result<Self, Error> {
        let instance = match &opts.workload {
            Workload::Template(t) => t.reply_instance(&opts.instance_header),
            _ => ReplyInstance::Header(opts.instance_header.clone()),
        };
        let (header, instance_json) = match instance {
            ReplyInstance::Header(h) => (h, None),
            ReplyInstance::Json(p) => {
                let pointer = Pointer::parse(&p)
                    .map_err(|e| Error::Usage(format!("feeder.request.instance_json: {e}")))?;
                (opts.instance_header.clone(), Some(pointer))
            }
        };
        let instance_header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|e| Error::Usage(format!("instance header: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT);
        let mut base = opts.target.clone();
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let target_host = opts.target.host_str().unwrap_or_default().to_string();
        // Every request names the target as Host, also when `--resolve`
        // sends it elsewhere (that is how a proxy picks the record).
        let authority = match opts.target.port() {
            Some(p) => format!("{target_host}:{p}"),
            None => target_host.clone(),
        };
        let host = HeaderValue::from_str(&authority)
            .map_err(|e| Error::Usage(format!("bad host {authority:?}: {e}")))?;
        if let Some((_, addr)) = opts
            .resolve
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(target_host.trim_matches(['[', ']'])))
        {
            if base.scheme() == "http" {
                base.set_ip_host(addr.ip())
                    .map_err(|()| Error::Usage(format!("resolve: cannot use {addr}")))?;
                base.set_port(Some(addr.port()))
                    .map_err(|()| Error::Usage(format!("resolve: cannot use {addr}")))?;
            } else {
                // TLS needs the real name for SNI: resolve only (the URL's port is kept).
                builder = builder.resolve(&target_host, *addr);
            }
        }
        let use_direct = match opts.client {
            ClientKind::Auto => base.scheme() == "http",
            ClientKind::Http1 if base.scheme() == "http" => true,
            ClientKind::Http1 => {
                return Err(Error::Usage(
                    "the http1 client speaks plain http only; use reqwest (or auto) for https"
                        .into(),
                ))
            }
            ClientKind::Reqwest => false,
        };
        let client = if use_direct {
            Client::Direct {
                host: base
                    .host_str()
                    .unwrap_or_default()
                    .trim_matches(['[', ']'])
                    .to_string(),
                port: base.port_or_known_default().unwrap_or(80),
            }
        } else {
            Client::Reqwest(
                builder
                    .pool_max_idle_per_host(opts.connection_cap())
                    .build()
                    .map_err(|e| Error::Client(e.to_string()))?,
            )
        };
        Ok(Transport {
            client,
            base,
            host,
            instance_header,
            instance_json,
            timeout: opts.timeout,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Up to `n` connections dialled ahead of the run (plain http only; a
    /// reqwest client dials on its first request). A dial that fails or
    /// outlasts the timeout ends the warm-up: the workers without a
    /// connection dial on their first request, and a server that cannot be
    /// reached shows there, counted, as in any run.
    pub async fn open(&self, n: usize) -> Vec<Conn> {
        let Client::Direct { host, port } = &self.client else {
            return Vec::new();
        };
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            match tokio::time::timeout(self.timeout, Conn::open(host, *port)).await {
                Ok(Ok(conn)) => conns.push(conn),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "dialling ahead failed");
                    break;
                }
                Err(_) => break,
            }
        }
        conns
    }

    /// The target's base path without its trailing `/` (`""` for the root):
    /// what a template's path goes under.
    pub fn base_path(&self) -> &str {
        self.base.path().trim_end_matches('/')
    }

    /// `path` (with an optional query) under the target's base path.
    pub fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let full = format!(
            "{}/{}",
            self.base.path().trim_end_matches('/'),
            p.trim_start_matches('/')
        );
        u.set_path(&full);
        u.set_query(q);
        u
    }

    /// One request, bounded by `deadline`. Returns the send instant and
    /// what came back; the reply counts once its status line is in (the app
    /// answers only after the order is durable); the body is drained for
    /// keep-alive, or read when it names the instance.
    pub async fn exchange(
        &self,
        conn: &mut Conn,
        req: &Request<'_>,
        deadline: Instant,
    ) -> (Instant, Reply) {
        let deadline = tokio::time::Instant::from_std(deadline);
        let sent = Instant::now();
        let reply = match &self.client {
            Client::Direct { host, port } => {
                let target = Target { host, port: *port };
                self.via_conn(conn, &target, req, deadline).await
            }
            Client::Reqwest(c) => self.via_reqwest(c, req, deadline).await,
        };
        (sent, reply)
    }

    async fn via_conn(
        &self,
        conn: &mut Conn,
        target: &Target<'_>,
        req: &Request<'_>,
        deadline: tokio::time::Instant,
    ) -> Reply {
        let wire = http1::Request {
            method: req.method,
            path_and_query: req.path,
            host: self.host.as_bytes(),
            user_agent: if req.own_user_agent { "" } else { USER_AGENT },
            body: req.body,
        };
        let mut reply = Reply::default();
        // One timer for the whole exchange. The reply counts once its head is
        // in; a body not drained in time leaves the connection closed
        // (dropped with the future), never out of step.
        let _ = tokio::time::timeout_at(deadline, async {
            let header = self.instance_header.as_str();
            match conn
                .send_with(target.host, target.port, header, &wire, req.headers)
                .await
            {
                Ok((head, framing)) => {
                    reply.status = Some(head.status);
                    let read = match &self.instance_json {
                        None => {
                            reply.instance = head.instance;
                            conn.drain(framing, head.close).await
                        }
                        Some(p) => conn
                            .read_body(framing, head.close, REPLY_BODY_LIMIT)
                            .await
                            .map(|body| reply.instance = body.and_then(|b| p.instance_in(b))),
                    };
                    if let Err(e) = read {
                        tracing::debug!(error = %e, "reading the reply body failed");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "request failed"),
            }
        })
        .await;
        reply
    }

    /// A set-up GET for a one-off hyper connection.
    fn get_request(&self, url: &Url) -> Result<http::Request<Full<Bytes>>, http::Error> {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        http::Request::builder()
            .uri(path)
            .header(http::header::HOST, self.host.clone())
            .header(http::header::USER_AGENT, USER_AGENT)
            .method(http::Method::GET)
            .body(Full::new(Bytes::new()))
    }

    async fn via_reqwest(
        &self,
        client: &reqwest::Client,
        req: &Request<'_>,
        deadline: tokio::time::Instant,
    ) -> Reply {
        let mut reply = Reply::default();
        let (Ok(method), Ok(url)) = (
            http::Method::from_bytes(req.method.as_bytes()),
            self.base.join(req.path),
        ) else {
            // Both were checked before the run; never sent, so indeterminate.
            tracing::debug!(method = req.method, path = req.path, "unsendable request");
            return reply;
        };
        let mut builder = client
            .request(method, url)
            .header(http::header::HOST, self.host.clone());
        for (name, value) in header_lines(req.headers) {
            builder = builder.header(name, value);
        }
        if let Some(b) = req.body {
            builder = builder.body(Bytes::copy_from_slice(b));
        }
        let mut resp = match tokio::time::timeout_at(deadline, builder.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "request failed");
                return reply;
            }
            Err(_) => return reply,
        };
        reply.status = Some(resp.status().as_u16());
        if self.instance_json.is_none() {
            reply.instance = self.instance_of(resp.headers());
        }
        let mut body = Vec::new();
        let mut whole = true;
        let _ = tokio::time::timeout_at(deadline, async {
            while let Ok(Some(chunk)) = resp.chunk().await {
                if self.instance_json.is_some() && whole {
                    whole = body.len() + chunk.len() <= REPLY_BODY_LIMIT;
                    if whole {
                        body.extend_from_slice(&chunk);
                    }
                }
            }
        })
        .await;
        if let (Some(p), true) = (&self.instance_json, whole) {
            reply.instance = p.instance_in(&body);
        }
        reply
    }

    fn instance_of(&self, headers: &http::HeaderMap) -> Option<String> {
        headers
            .get(&self.instance_header)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// A GET with the whole body (set-up requests only, not the load).
    async fn get_whole(&self, url: &Url) -> Result<(u16, Bytes), String> {
        match &self.client {
            Client::Direct { host, port } => {
                let target = Target { host, port: *port };
                let mut send = dial(&target).await?;
                let req = self.get_request(url).map_err(|e| e.to_string())?;
                send.ready().await.map_err(|e| e.to_string())?;
                let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok((status, body))
            }
            Client::Reqwest(c) => {
                let resp = c
                    .get(url.clone())
                    .header(http::header::HOST, self.host.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let body = resp.bytes().await.map_err(|e| e.to_string())?;
                Ok((status, body))
            }
        }
    }

    /// `GET {target}/users` once: the ids of the app's users.
    pub async fn fetch_users(&self) -> Result<Vec<String>, Error> {
        let url = self.url("users");
        let fail = |reason: String| Error::Users {
            url: url.to_string(),
            reason,
        };
        let limit = self.timeout.max(Duration::from_secs(5));
        let (status, body) = tokio::time::timeout(limit, self.get_whole(&url))
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(fail)?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("HTTP {status}")));
        }
        let ids = parse_user_ids(&body).map_err(fail)?;
        if ids.is_empty() {
            return Err(fail("the app has no users".into()));
        }
        Ok(ids)
    }
}

/// The `name: value\r\n` lines of a header block as (name, value) pairs.
fn header_lines(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    block.split(|b| *b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|b| *b == b':')?;
        Some((&line[..colon], line[colon + 1..].trim_ascii_start()))
    })
}

/// Where a direct connection goes.
struct Target<'a> {
    host: &'a str,
    port: u16,
}

/// Opens a keep-alive HTTP/1 connection; its driver runs as a task that ends
/// when the connection closes.
async fn dial(target: &Target<'_>) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect((target.host, target.port))
        .await
        .map_err(|e| format!("connecting to {}:{}: {e}", target.host, target.port))?;
    let _ = stream.set_nodelay(true);
    let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection ended");
        }
    });
    Ok(send)
}

/// A JSON array of users, or NDJSON (one user per line).
pub fn parse_user_ids(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    if let Ok(users) = serde_json::from_slice::<Vec<IdOnly>>(body) {
        return Ok(users.into_iter().map(|u| u.id).collect());
    }
    body.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| {
            serde_json::from_slice::<IdOnly>(l)
                .map(|u| u.id)
                .map_err(|e| format!("not a list of users: {e}"))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_arrays_and_ndjson() {
        let arr = br#"[{"id":"u-1","name":"A","company_id":"c"},{"id":"u-2","name":"B","company_id":"c"}]"#;
        assert_eq!(parse_user_ids(arr).unwrap(), vec!["u-1", "u-2"]);
        let nd = b"{\"id\":\"u-1\"}\n{\"id\":\"u-2\"}\n";
        assert_eq!(parse_user_ids(nd).unwrap(), vec!["u-1", "u-2"]);
        assert!(parse_user_ids(b"<html>").is_err());
    }

    #[test]
    fn resolve_rewrites_the_address_and_keeps_the_host() {
        let mut o = Options::new("http://shop.test:8080/api".parse().unwrap(), 1.0);
        o.resolve = vec![("shop.test".into(), "127.0.0.1:9999".parse().unwrap())];
        let t = Transport::new(&o).unwrap();
        assert_eq!(t.url("orders").as_str(), "http://127.0.0.1:9999/api/orders");
        assert_eq!(
            t.url("/health?x=1").as_str(),
            "http://127.0.0.1:9999/api/health?x=1"
        );
        assert_eq!(t.host, "shop.test:8080");
    }
}
