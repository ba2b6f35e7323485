//! The HTTP side: one pooled keep-alive client shared by every request, a
//! cap on concurrent exchanges (connections), the `--resolve` rewriting, and
//! one exchange with its timeout.
//!
//! Plain `http` goes through hyper-util's pooled client (the same pool
//! reqwest wraps, without its per-request layers: measurably cheaper at tens
//! of thousands of requests per second, see `scripts/bench-feeder.sh`);
//! `https` goes through reqwest for TLS.

use crate::options::ClientKind;
use crate::{Error, Options};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use url::Url;

const USER_AGENT: &str = concat!("handover-feeder/", env!("CARGO_PKG_VERSION"));

#[derive(Debug)]
enum Client {
    Hyper(Box<hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>>),
    Reqwest(reqwest::Client),
}

/// Where and how requests go.
#[derive(Debug)]
pub struct Transport {
    client: Client,
    /// At most this many exchanges at once: bounds the connection count, so
    /// a slow server meets a queue (measured from the due time) instead of a
    /// connection storm.
    permits: Arc<Semaphore>,
    /// The URL requests connect to (the target, or its `--resolve` address).
    base: Url,
    /// The Host header to keep when the connection goes to another address.
    host: Option<HeaderValue>,
    instance_header: HeaderName,
    timeout: Duration,
}

/// What came back, if anything.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: Option<u16>,
    pub instance: Option<String>,
}

impl Transport {
    pub fn new(opts: &Options) -> Result<Self, Error> {
        let instance_header = HeaderName::from_bytes(opts.instance_header.as_bytes())
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
        let mut host = None;
        let target_host = opts.target.host_str().unwrap_or_default().to_string();
        if let Some((_, addr)) = opts
            .resolve
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(target_host.trim_matches(['[', ']'])))
        {
            if base.scheme() == "http" {
                // Connect to the address, keep the original authority as Host.
                let authority = match opts.target.port() {
                    Some(p) => format!("{target_host}:{p}"),
                    None => target_host.clone(),
                };
                host =
                    Some(HeaderValue::from_str(&authority).map_err(|e| {
                        Error::Usage(format!("resolve: bad host {authority:?}: {e}"))
                    })?);
                base.set_ip_host(addr.ip())
                    .map_err(|()| Error::Usage(format!("resolve: cannot use {addr}")))?;
                base.set_port(Some(addr.port()))
                    .map_err(|()| Error::Usage(format!("resolve: cannot use {addr}")))?;
            } else {
                // TLS needs the real name for SNI: resolve only (the URL's port is kept).
                builder = builder.resolve(&target_host, *addr);
            }
        }
        let use_hyper = match opts.client {
            ClientKind::Auto => base.scheme() == "http",
            ClientKind::Hyper if base.scheme() == "http" => true,
            ClientKind::Hyper => {
                return Err(Error::Usage(
                    "the hyper client speaks plain http only; use reqwest (or auto) for https"
                        .into(),
                ))
            }
            ClientKind::Reqwest => false,
        };
        let client = if use_hyper {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            Client::Hyper(Box::new(
                hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build(connector),
            ))
        } else {
            Client::Reqwest(builder.build().map_err(|e| Error::Client(e.to_string()))?)
        };
        Ok(Transport {
            client,
            permits: Arc::new(Semaphore::new(opts.connection_cap())),
            base,
            host,
            instance_header,
            timeout: opts.timeout,
        })
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

    /// Waits for a free connection slot until `released + timeout` (the
    /// timeout runs from when the slot was handed to the client). `None`: no
    /// connection became free in time, and nothing may be sent.
    pub async fn permit(&self, released: Instant) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let deadline = tokio::time::Instant::from_std(released + self.timeout);
        tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .ok()?
            .ok()
    }

    /// One request, POST with a JSON body or GET without, bounded by
    /// `released + timeout`. Returns the send instant and what came back; the
    /// reply counts once its status line is in (the app answers only after
    /// the order is durable); the body is drained for keep-alive.
    pub async fn exchange(
        &self,
        url: &Url,
        body: Option<Bytes>,
        released: Instant,
    ) -> (Instant, Reply) {
        let deadline = tokio::time::Instant::from_std(released + self.timeout);
        let sent = Instant::now();
        let reply = match &self.client {
            Client::Hyper(c) => self.via_hyper(c, url, body, deadline).await,
            Client::Reqwest(c) => self.via_reqwest(c, url, body, deadline).await,
        };
        (sent, reply)
    }

    async fn via_hyper(
        &self,
        client: &hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
        url: &Url,
        body: Option<Bytes>,
        deadline: tokio::time::Instant,
    ) -> Reply {
        let mut req = http::Request::builder()
            .uri(url.as_str())
            .header(http::header::USER_AGENT, USER_AGENT);
        if let Some(h) = &self.host {
            req = req.header(http::header::HOST, h.clone());
        }
        let req = match body {
            Some(b) => req
                .method(http::Method::POST)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(b)),
            None => req.method(http::Method::GET).body(Full::new(Bytes::new())),
        };
        let mut reply = Reply::default();
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "building the request failed");
                return reply;
            }
        };
        let resp = match tokio::time::timeout_at(deadline, client.request(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "request failed");
                return reply;
            }
            Err(_) => return reply,
        };
        reply.status = Some(resp.status().as_u16());
        reply.instance = self.instance_of(resp.headers());
        let mut body = resp.into_body();
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
        reply
    }

    async fn via_reqwest(
        &self,
        client: &reqwest::Client,
        url: &Url,
        body: Option<Bytes>,
        deadline: tokio::time::Instant,
    ) -> Reply {
        let mut req = match body {
            Some(b) => client
                .post(url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(b),
            None => client.get(url.clone()),
        };
        if let Some(h) = &self.host {
            req = req.header(http::header::HOST, h.clone());
        }
        let mut reply = Reply::default();
        let mut resp = match tokio::time::timeout_at(deadline, req.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "request failed");
                return reply;
            }
            Err(_) => return reply,
        };
        reply.status = Some(resp.status().as_u16());
        reply.instance = self.instance_of(resp.headers());
        let _ = tokio::time::timeout_at(deadline, async {
            while let Ok(Some(_)) = resp.chunk().await {}
        })
        .await;
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
            Client::Hyper(c) => {
                let mut req = http::Request::builder()
                    .uri(url.as_str())
                    .header(http::header::USER_AGENT, USER_AGENT);
                if let Some(h) = &self.host {
                    req = req.header(http::header::HOST, h.clone());
                }
                let req = req
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| e.to_string())?;
                let resp = c.request(req).await.map_err(|e| e.to_string())?;
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
                let mut req = c.get(url.clone());
                if let Some(h) = &self.host {
                    req = req.header(http::header::HOST, h.clone());
                }
                let resp = req.send().await.map_err(|e| e.to_string())?;
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
        assert_eq!(t.host.as_ref().unwrap(), "shop.test:8080");
    }
}
