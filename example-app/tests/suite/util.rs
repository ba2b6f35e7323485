//! Helpers: a guard around an `example-app` child process, an HTTP client,
//! order bodies, and direct access to the store for assertions.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use example_app::store::{self, EventStore, StoreOptions, StoreUrl, StoredEvent};
use handover_contract::Order;
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_example-app");

/// Generous: the machine is small and shared.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `example-app`; killed (by pid) when dropped, also on test failure.
pub struct AppProc {
    child: Child,
    pub base: String,
    pub instance: String,
}

impl AppProc {
    pub fn start(store: &str, instance: &str, extra: &[&str]) -> AppProc {
        Self::try_start(store, instance, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start(store: &str, instance: &str, extra: &[&str]) -> Result<AppProc, String> {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--store",
                store,
                "--instance-id",
                instance,
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .env_remove("HANDOVER_LISTEN")
            .env_remove("HANDOVER_STORE")
            .env_remove("HANDOVER_INSTANCE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {BIN}: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stdout so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                return Err(format!("{instance}: no listening line (exit {status:?})"));
            }
        };
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("{line}: {e}"))?;
        assert_eq!(v["event"], "listening", "{line}");
        assert_eq!(v["instance"], instance, "{line}");
        let addr = v["addr"].as_str().expect("addr").to_string();
        Ok(AppProc {
            child,
            base: format!("http://{addr}"),
            instance: instance.to_string(),
        })
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal");
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for AppProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

pub fn order_body(id: &str, user: &str, qty: u32) -> Value {
    json!({"id": id, "user_id": user, "line_items": [{"product": "widget", "quantity": qty}, {"product": "gadget", "quantity": 1}]})
}

/// A reply: status, `X-Instance`, body as JSON (Null if not JSON).
pub struct Reply {
    pub status: u16,
    pub instance: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
}

pub async fn send(req: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let instance = header("x-instance");
    let retry_after = header("retry-after");
    let bytes = resp.bytes().await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        instance,
        retry_after,
        body,
    })
}

pub async fn post_order(c: &reqwest::Client, app: &AppProc, body: &Value) -> Reply {
    send(c.post(app.url("/orders")).json(body))
        .await
        .expect("post /orders")
}

pub async fn get_json(c: &reqwest::Client, app: &AppProc, path: &str) -> Reply {
    send(c.get(app.url(path))).await.expect("get")
}

/// Every order of an instance via the NDJSON listing, in position order.
pub async fn list_ndjson(c: &reqwest::Client, app: &AppProc) -> Vec<Order> {
    let text = c
        .get(app.url("/orders"))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("body");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("order line"))
        .collect()
}

/// Polls `/health` until `applied` reaches `position`.
pub async fn wait_applied(c: &reqwest::Client, app: &AppProc, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = get_json(c, app, "/health").await;
        if h.body["applied"].as_u64().unwrap_or(0) >= position {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} stuck at {}",
            app.instance,
            h.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn open_store(url: &str) -> Arc<dyn EventStore> {
    open_store_with(url, StoreOptions::default()).await
}

pub async fn open_store_with(url: &str, opts: StoreOptions) -> Arc<dyn EventStore> {
    let url = StoreUrl::parse(url).expect("store url");
    store::open(&url, opts).await.expect("open store")
}

pub async fn head(store: &dyn EventStore) -> u64 {
    store.head().await.expect("head")
}

pub async fn all_events(store: &dyn EventStore) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.read_after(after, 10_000).await.expect("read");
        match batch.last() {
            Some(last) => after = last.position,
            None => return out,
        }
        out.extend(batch);
    }
}

/// Fails with both values printed when they differ.
#[macro_export]
macro_rules! assert_same {
    ($what:expr, $left:expr, $right:expr) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            panic!("{}:\n  left:  {:?}\n  right: {:?}", $what, l, r);
        }
    }};
}
