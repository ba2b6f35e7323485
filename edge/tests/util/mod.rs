//! Helpers for the edge's integration tests: the edge binary as a child
//! process, and small in-process origins on loopback addresses.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub const TOKEN: &str = "tok_test_edge_0123456789";
pub const ADMIN: &str = "adm_test_edge_0123456789";
pub const ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const HOST: &str = "shop.handover.test";

/// A config with one zone and one proxied record pointing at `content`.
pub fn config(origin_port: u16, content: &str, extra: &str) -> String {
    format!(
        r#"
api_listen = "127.0.0.1:0"
proxy_listen = "127.0.0.1:0"
origin_port = {origin_port}
state_file = "edge-state.json"
tokens = ["{TOKEN}"]
admin_token = "{ADMIN}"
{extra}
[[zones]]
name = "handover.test"
id = "{ZONE_ID}"
[[zones.records]]
name = "{HOST}"
type = "A"
content = "{content}"
proxied = true
ttl = 1
"#
    )
}

/// The edge binary running as a child; killed by pid when dropped.
pub struct EdgeProc {
    pub child: Child,
    pub api: SocketAddr,
    pub proxy: SocketAddr,
    pub dir: PathBuf,
    stderr_log: PathBuf,
}

impl EdgeProc {
    /// Writes `config_text` to `dir/edge.toml`, starts the edge and waits for
    /// its listening line.
    pub fn start(dir: &Path, config_text: &str) -> EdgeProc {
        let config = dir.join("edge.toml");
        std::fs::write(&config, config_text).expect("write config");
        let stderr_log = dir.join(format!("edge-{}.log", now_ns()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_edge"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "edge=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).expect("log file"))
            .spawn()
            .expect("spawn edge");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut proc = EdgeProc {
            child,
            api: "127.0.0.1:1".parse().unwrap(),
            proxy: "127.0.0.1:1".parse().unwrap(),
            dir: dir.to_path_buf(),
            stderr_log,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no listening line; log:\n{}", proc.log()));
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("bad listening line {line:?}: {e}; log:\n{}", proc.log()));
        assert_eq!(v["event"], "listening", "{line}");
        assert!(line.starts_with(r#"{"event":"listening","api":"#), "{line}");
        proc.api = v["api"].as_str().unwrap().parse().unwrap();
        proc.proxy = v["proxy"].as_str().unwrap().parse().unwrap();
        proc
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn base(&self) -> String {
        format!("http://{}/client/v4/", self.api)
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for EdgeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// How a test origin answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// 200 with `X-Instance` and the instance id as the body.
    Answer,
    /// Accepts and reads the request but never answers.
    Stall,
    /// Answers like `Answer`, after this delay.
    Slow(Duration),
}

/// An in-process HTTP origin; every connection dies with it.
pub struct Origin {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    stop: tokio_util::sync::CancellationToken,
}

impl Origin {
    pub async fn start(
        listener: TcpListener,
        instance: &'static str,
        behaviour: Behaviour,
    ) -> Origin {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&hits);
        let stop = tokio_util::sync::CancellationToken::new();
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopping.cancelled() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let counter = Arc::clone(&counter);
                let stopping = stopping.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |_req| {
                        let counter = Arc::clone(&counter);
                        async move {
                            counter.fetch_add(1, Ordering::Relaxed);
                            match behaviour {
                                Behaviour::Stall => {
                                    tokio::time::sleep(Duration::from_secs(3600)).await
                                }
                                Behaviour::Slow(d) => tokio::time::sleep(d).await,
                                Behaviour::Answer => {}
                            }
                            let resp = hyper::Response::builder()
                                .header("x-instance", instance)
                                .header("server", "test-origin")
                                .body(Full::new(Bytes::from_static(instance.as_bytes())))
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopping.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
                while conns.try_join_next().is_some() {}
            }
            // Graceful stop: the listener is closed; let in-flight requests finish.
            drop(listener);
            while conns.join_next().await.is_some() {}
        });
        Origin {
            addr,
            hits,
            task,
            stop,
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Like the example-app's SIGTERM: stop accepting, finish in-flight
    /// requests, close every connection.
    pub async fn stop(self) {
        self.stop.cancel();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.task.is_finished() {
            assert!(Instant::now() < deadline, "origin did not stop");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Closes the listener and every open connection at once.
    pub async fn kill(self) {
        self.task.abort();
        while !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the same free port on 127.0.0.2 and 127.0.0.3.
pub async fn twin_listeners() -> (TcpListener, TcpListener) {
    for _ in 0..100 {
        let a = TcpListener::bind("127.0.0.2:0")
            .await
            .expect("bind 127.0.0.2");
        let port = a.local_addr().unwrap().port();
        if let Ok(b) = TcpListener::bind(SocketAddr::new(IpAddr::from([127, 0, 0, 3]), port)).await
        {
            return (a, b);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// A reqwest client that opens a new connection per request (no pooling),
/// so every request is a fresh routing decision at the edge.
pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A keep-alive client (one pooled connection reused).
pub fn pooled_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET through the proxy with the test Host; returns (status, X-Instance).
pub async fn via_proxy(client: &reqwest::Client, proxy: SocketAddr) -> (u16, Option<String>) {
    let resp = client
        .get(format!("http://{proxy}/"))
        .header("host", HOST)
        .send()
        .await
        .expect("request through the edge");
    let status = resp.status().as_u16();
    let instance = resp
        .headers()
        .get("x-instance")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = resp.bytes().await;
    (status, instance)
}

/// Reads a counter from Prometheus text; 0 when absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0)
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
        let instance = resp
            .headers()
            .get("x-instance")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let _ = resp.into_body().collect().await;
        (status, instance)
    }
}
