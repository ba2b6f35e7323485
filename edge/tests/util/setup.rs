//! The fixture builder: a running edge described by what differs from the
//! default (one zone, `HOST` proxied to 127.0.0.2, default timings), with
//! the origins a test needs, and API calls against it.

use super::{config, twin_listeners, Behaviour, EdgeProc, Origin, ADMIN, TOKEN};
use std::ops::{Deref, DerefMut};
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Where the record points by default: origin `a`.
const ORIGIN_A: &str = "127.0.0.2";
/// The origin port when no origin runs (nothing listens there).
const NO_ORIGIN_PORT: u16 = 18080;

/// What a test's edge looks like; [`EdgeBuilder::start`] (no origins),
/// [`with_origin`](EdgeBuilder::with_origin) or
/// [`with_origins`](EdgeBuilder::with_origins) runs it.
#[derive(Debug, Clone, Default)]
pub struct EdgeBuilder {
    settings: Vec<String>,
}

impl EdgeBuilder {
    pub fn new() -> EdgeBuilder {
        EdgeBuilder::default()
    }

    /// `propagation = "…"`: the window after a record change.
    pub fn propagation(self, d: &str) -> EdgeBuilder {
        self.setting(&format!("propagation = \"{d}\""))
    }

    /// `idle_timeout = "…"`: how long a client connection stays sticky while idle.
    pub fn idle_timeout(self, d: &str) -> EdgeBuilder {
        self.setting(&format!("idle_timeout = \"{d}\""))
    }

    /// `origin_timeout = "…"`: the wait for a response head (then 524).
    pub fn origin_timeout(self, d: &str) -> EdgeBuilder {
        self.setting(&format!("origin_timeout = \"{d}\""))
    }

    /// `connect_timeout = "…"`: the wait for a TCP connection (then 522).
    pub fn connect_timeout(self, d: &str) -> EdgeBuilder {
        self.setting(&format!("connect_timeout = \"{d}\""))
    }

    /// Faults armed at start-up, as the lines of a `[faults]` table.
    pub fn faults(self, lines: &str) -> EdgeBuilder {
        self.setting(&format!("[faults]\n{lines}"))
    }

    /// Any other top-level config line(s).
    pub fn setting(mut self, line: &str) -> EdgeBuilder {
        self.settings.push(line.to_string());
        self
    }

    fn config(&self, origin_port: u16) -> String {
        config(origin_port, ORIGIN_A, &self.settings.join("\n"))
    }

    /// The edge alone; the record's origin port has nothing behind it.
    pub fn start(&self) -> TestEdge {
        TestEdge::start(self.config(NO_ORIGIN_PORT), None)
    }

    /// Origin `a` on 127.0.0.2 behind the record; the same port on 127.0.0.3
    /// stays bound, with nothing answering.
    pub async fn with_origin(&self, a: Behaviour) -> (TestEdge, Origin) {
        let (la, lb) = twin_listeners().await;
        let port = la.local_addr().unwrap().port();
        let a = Origin::start(la, "a", a).await;
        (TestEdge::start(self.config(port), Some(lb)), a)
    }

    /// The record on 127.0.0.2 with the bound listener handed to the test,
    /// which answers on it by hand (a scripted origin).
    pub async fn with_listener(&self) -> (TestEdge, TcpListener) {
        let (la, lb) = twin_listeners().await;
        let port = la.local_addr().unwrap().port();
        (TestEdge::start(self.config(port), Some(lb)), la)
    }

    /// Origin `a` on 127.0.0.2 behind the record and `b` on 127.0.0.3, the
    /// same port, for the record to be moved to.
    pub async fn with_origins(&self, a: Behaviour, b: Behaviour) -> (TestEdge, Origin, Origin) {
        let (la, lb) = twin_listeners().await;
        let port = la.local_addr().unwrap().port();
        let a = Origin::start(la, "a", a).await;
        let b = Origin::start(lb, "b", b).await;
        (TestEdge::start(self.config(port), None), a, b)
    }
}

/// A running edge with its own directory (config, state file, log); reads
/// as the [`EdgeProc`] it wraps.
pub struct TestEdge {
    proc: EdgeProc,
    pub dir: TempDir,
    config: String,
    /// A listener held so its port stays taken for the test's length.
    _held: Option<TcpListener>,
}

impl TestEdge {
    fn start(config: String, held: Option<TcpListener>) -> TestEdge {
        let dir = tempfile::tempdir().unwrap();
        let proc = EdgeProc::start(dir.path(), &config);
        TestEdge {
            proc,
            dir,
            config,
            _held: held,
        }
    }

    /// Stops this process (if still running) and starts a new one on the same
    /// directory and config, as after a crash or a deploy.
    pub fn restart(self) -> TestEdge {
        let TestEdge {
            proc,
            dir,
            config,
            _held,
        } = self;
        drop(proc);
        let proc = EdgeProc::start(dir.path(), &config);
        TestEdge {
            proc,
            dir,
            config,
            _held,
        }
    }

    /// `method` on the API at `path` (relative to `/client/v4/`), no token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().request(method, format!("{}{path}", self.base()))
    }

    /// `method` on the API at `path` with the test's API token.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(TOKEN)
    }

    /// `GET path` with the API token, the reply's JSON whatever its status.
    pub async fn api_json(&self, path: &str) -> serde_json::Value {
        self.authed(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /admin/faults` with `token` and `spec`.
    pub async fn arm_faults(&self, token: &str, spec: &serde_json::Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("http://{}/admin/faults", self.api))
            .bearer_auth(token)
            .json(spec)
            .send()
            .await
            .unwrap()
    }

    /// `POST /admin/faults` with the admin token.
    pub async fn arm(&self, spec: serde_json::Value) -> reqwest::Response {
        self.arm_faults(ADMIN, &spec).await
    }

    /// `method` on an admin path (`/admin/…`) with the admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("http://{}/admin/{path}", self.api))
            .bearer_auth(ADMIN)
    }

    /// `POST /admin/origins/{ip}/faults` with `body`; the reply's JSON, after
    /// checking it succeeded.
    pub async fn arm_origin(&self, ip: &str, body: serde_json::Value) -> serde_json::Value {
        let resp = self
            .admin(reqwest::Method::POST, &format!("origins/{ip}/faults"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "arming {body} for {ip}");
        resp.json().await.unwrap()
    }

    /// `DELETE /admin/origins/{ip}/faults`.
    pub async fn clear_origin(&self, ip: &str) {
        let resp = self
            .admin(reqwest::Method::DELETE, &format!("origins/{ip}/faults"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "clearing {ip}");
    }

    /// `GET /admin/…`: the reply's JSON `result`.
    pub async fn admin_result(&self, path: &str) -> serde_json::Value {
        let v: serde_json::Value = self
            .admin(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["result"].clone()
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn scrape(&self) -> String {
        reqwest::Client::new()
            .get(format!("http://{}/metrics", self.api))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Deref for TestEdge {
    type Target = EdgeProc;
    fn deref(&self) -> &EdgeProc {
        &self.proc
    }
}

impl DerefMut for TestEdge {
    fn deref_mut(&mut self) -> &mut EdgeProc {
        &mut self.proc
    }
}
