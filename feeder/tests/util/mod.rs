//! Helpers for the feeder's integration tests: a local HTTP server whose
//! behaviour each test scripts, and a guard for child processes.

#![allow(dead_code)]

use bytes::Bytes;
use handover_contract::FeederReport;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What the server knows about an incoming request when it decides the reply.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// 0-based arrival number.
    pub n: u64,
    /// Time since the server started.
    pub elapsed: Duration,
    pub method: String,
    pub path: String,
}

/// The scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub instance: Option<String>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn ok(instance: &str) -> Self {
        Reply {
            status: 201,
            instance: Some(instance.to_string()),
            delay: Duration::ZERO,
            body: "{}".into(),
        }
    }

    pub fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn body(mut self, b: &str) -> Self {
        self.body = b.to_string();
        self
    }
}

/// What one order body said, as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub user_id: String,
    pub digest: String,
}

/// One request as the server received it (any method, any body).
#[derive(Debug, Clone)]
pub struct Arrived {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
pub struct Seen {
    pub count: AtomicU64,
    /// Connections accepted so far.
    pub connections: AtomicU64,
    /// How many were open when the first request came in: the kernel's
    /// count of established connections to the server's port, since the
    /// accept loop can lag behind a client that dialled them all.
    pub connections_at_first_request: AtomicU64,
    pub hosts: Mutex<Vec<String>>,
    pub orders: Mutex<HashMap<String, Received>>,
    pub paths: Mutex<Vec<String>>,
    pub requests: Mutex<Vec<Arrived>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn count(&self) -> u64 {
        self.seen.count.load(Ordering::SeqCst)
    }
}

/// Starts a server on 127.0.0.1:0 that answers as `behave` says.
pub async fn serve<F>(behave: F) -> TestServer
where
    F: Fn(&Ctx) -> Reply + Send + Sync + 'static,
{
    serve_with_idle_close(behave, None).await
}

/// Like [`serve`], but closes a keep-alive connection idle for `idle`.
pub async fn serve_with_idle_close<F>(behave: F, idle: Option<Duration>) -> TestServer
where
    F: Fn(&Ctx) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let port = addr.port();
    let behave = Arc::new(behave);
    let t0 = Instant::now();
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            seen2.connections.fetch_add(1, Ordering::SeqCst);
            let (behave, seen) = (behave.clone(), seen2.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (behave, seen) = (behave.clone(), seen.clone());
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            handle(req, &*behave, &seen, port, t0).await,
                        )
                    }
                });
                let mut builder = http1::Builder::new();
                if let Some(idle) = idle {
                    builder
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(idle);
                }
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    TestServer { addr, seen, task }
}

/// Server-side TCP connections in ESTABLISHED state on `port`, accepted or
/// still in the listen queue (/proc/net/tcp: local address, then state 01).
fn established_to(port: u16) -> u64 {
    let local = format!(":{port:04X}");
    let n: usize = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|t| {
            t.lines()
                .skip(1)
                .filter(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.len() > 3 && cols[1].ends_with(&local) && cols[3] == "01"
                })
                .count()
        })
        .sum();
    u64::try_from(n).unwrap_or(u64::MAX)
}

async fn handle<F>(
    req: Request<Incoming>,
    behave: &F,
    seen: &Seen,
    port: u16,
    t0: Instant,
) -> Response<Full<Bytes>>
where
    F: Fn(&Ctx) -> Reply,
{
    let n = seen.count.fetch_add(1, Ordering::SeqCst);
    if n == 0 {
        let accepted = seen.connections.load(Ordering::SeqCst);
        let open = established_to(port).max(accepted);
        seen.connections_at_first_request
            .store(open, Ordering::SeqCst);
    }
    let ctx = Ctx {
        n,
        elapsed: t0.elapsed(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    };
    if let Some(h) = req.headers().get(hyper::header::HOST) {
        seen.hosts
            .lock()
            .expect("lock")
            .push(h.to_str().unwrap_or("?").to_string());
    }
    seen.paths.lock().expect("lock").push(ctx.path.clone());
    let reply = behave(&ctx);
    let target = req.uri().to_string();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.requests.lock().expect("lock").push(Arrived {
        method: ctx.method.clone(),
        target,
        headers,
        body: body.clone(),
    });
    if ctx.method == "POST" {
        if let Ok(order) = serde_json::from_slice::<handover_contract::NewOrder>(&body) {
            seen.orders.lock().expect("lock").insert(
                order.id.clone(),
                Received {
                    user_id: order.user_id.clone(),
                    digest: handover_contract::order::line_items_digest(&order.line_items),
                },
            );
        }
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json");
    if let Some(i) = &reply.instance {
        resp = resp.header("X-Instance", i.as_str());
    }
    resp.body(Full::new(Bytes::from(reply.body)))
        .expect("response")
}

/// The feeder binary, killed on drop (by pid, through tokio's kill_on_drop).
pub fn feeder_cmd(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feeder"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("FEEDER_ACK_LOG")
        .env_remove("FEEDER_REPORT")
        .env_remove("FEEDER_RUN_ID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "{}\n{}", self.stdout, self.stderr);
    }

    /// Asserts stdout contains `text`, showing stdout when it does not.
    #[track_caller]
    pub fn assert_stdout_has(&self, text: &str) {
        assert!(self.stdout.contains(text), "{}", self.stdout);
    }

    /// Asserts stdout contains `text` exactly `times` times.
    #[track_caller]
    pub fn assert_stdout_count(&self, text: &str, times: usize) {
        assert_eq!(self.stdout.matches(text).count(), times, "{}", self.stdout);
    }
}

/// Runs the feeder with `args` plus `--report REPORT` and asserts it
/// exited 0; the report is then read from `report`.
pub async fn run_with_report(args: &[&str], report: &Path) -> Output {
    let report = report.to_str().expect("report path is UTF-8");
    let mut all = args.to_vec();
    all.extend(["--report", report]);
    let out = run_feeder(&all, Duration::from_secs(60)).await;
    out.assert_code(0);
    out
}

/// Runs the feeder with `args`, its report in a temporary file; asserts it
/// exited 0 and returns its output and the report.
pub async fn run_reported(args: &[&str]) -> (Output, FeederReport) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.json");
    let out = run_with_report(args, &path).await;
    (out, read_report(&path))
}

pub fn read_report(path: &Path) -> FeederReport {
    let text = std::fs::read_to_string(path).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

/// Runs the feeder to completion (bounded by `limit`), killing it if it overruns.
pub async fn run_feeder(args: &[&str], limit: Duration) -> Output {
    let child = feeder_cmd(args).spawn().expect("spawn feeder");
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("feeder {args:?} did not finish within {limit:?}"))
        .expect("wait feeder");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts with both values and a context printed readably.
#[macro_export]
macro_rules! assert_within {
    ($actual:expr, $lo:expr, $hi:expr, $($ctx:tt)*) => {{
        let (a, lo, hi) = ($actual, $lo, $hi);
        assert!(
            lo <= a && a <= hi,
            "{} = {:?}, expected within [{:?}, {:?}]\n{}",
            stringify!($actual), a, lo, hi, format!($($ctx)*)
        );
    }};
}
