//! The HTTP side: one pooled keep-alive client shared by every request, the
//! `--resolve` rewriting, and one exchange with its timeout.

use crate::{Error, Options};
use http::{HeaderName, HeaderValue};
use std::time::{Duration, Instant};
use url::Url;

/// Where and how requests go.
#[derive(Debug)]
pub struct Transport {
    client: reqwest::Client,
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
            .user_agent(concat!("handover-feeder/", env!("CARGO_PKG_VERSION")));
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
        let client = builder.build().map_err(|e| Error::Client(e.to_string()))?;
        Ok(Transport {
            client,
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

    /// One request; never fails: a missing reply is a `Reply` without status.
    /// The reply counts once its status line is in (the app answers only
    /// after the order is durable); the body is drained for keep-alive.
    pub async fn exchange(&self, url: Url, body: Option<Vec<u8>>) -> (Instant, Reply) {
        let mut req = match body {
            Some(b) => self
                .client
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(b),
            None => self.client.get(url),
        };
        if let Some(h) = &self.host {
            req = req.header(http::header::HOST, h.clone());
        }
        let sent = Instant::now();
        let deadline = tokio::time::Instant::from_std(sent + self.timeout);
        let mut reply = Reply::default();
        let resp = match tokio::time::timeout_at(deadline, req.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "request failed");
                return (sent, reply);
            }
            Err(_) => return (sent, reply),
        };
        reply.status = Some(resp.status().as_u16());
        reply.instance = resp
            .headers()
            .get(&self.instance_header)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut resp = resp;
        let _ = tokio::time::timeout_at(deadline, async {
            while let Ok(Some(_)) = resp.chunk().await {}
        })
        .await;
        (sent, reply)
    }

    /// `GET {target}/users` once: the ids of the app's users.
    pub async fn fetch_users(&self) -> Result<Vec<String>, Error> {
        let url = self.url("users");
        let fail = |reason: String| Error::Users {
            url: url.to_string(),
            reason,
        };
        let mut req = self.client.get(url.clone());
        if let Some(h) = &self.host {
            req = req.header(http::header::HOST, h.clone());
        }
        let resp = tokio::time::timeout(self.timeout.max(Duration::from_secs(5)), req.send())
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let body = tokio::time::timeout(Duration::from_secs(30), resp.bytes())
            .await
            .map_err(|_| fail("timed out reading the body".into()))?
            .map_err(|e| fail(e.to_string()))?;
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
