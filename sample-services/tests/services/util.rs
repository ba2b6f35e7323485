//! A guard around a service process (killed by pid when dropped, also when
//! the test fails), an HTTP client, and a reader for Prometheus text.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

pub const KV: &str = env!("CARGO_BIN_EXE_kv-service");
pub const PG_ORDERS: &str = env!("CARGO_BIN_EXE_pg-orders");

/// Generous: the machine is small and shared.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A running service; SIGKILLed by pid when dropped if still running.
pub struct Proc {
    child: Child,
    pub base: String,
    stderr: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `bin` and waits for its listening line; panics with its
    /// stderr if it exits first.
    pub fn start(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = command(bin, args, env).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stdout so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = drain(child.stderr.take().unwrap());
        let mut p = Proc {
            child,
            base: String::new(),
            stderr,
        };
        let Ok(line) = rx.recv_timeout(TIMEOUT) else {
            let status = p.wait_exit(Duration::from_secs(1));
            panic!(
                "{bin} {args:?}: no listening line (exit {status:?}):\n{}",
                p.stderr_text()
            );
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v["event"], "listening", "{line}");
        p.base = format!("http://{}", v["addr"].as_str().unwrap());
        p
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn sigterm(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                _ if Instant::now() >= deadline => return None,
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// SIGTERM while `in_flight` (a request the test holds up) runs: the
    /// request must still be waiting, and after the signal the process
    /// stays up for it but accepts no new connection.
    pub async fn sigterm_during<T>(&mut self, in_flight: &tokio::task::JoinHandle<T>) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!in_flight.is_finished(), "the request was not held up");
        self.sigterm();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(self.is_running(), "exited with a request in flight");
        let refused = std::net::TcpStream::connect(self.addr()).is_err();
        assert!(refused, "still accepting after SIGTERM");
    }

    /// After the request in flight is done: a clean exit, code 0.
    pub fn assert_drained_and_exited_0(&mut self) {
        let status = self
            .wait_exit(Duration::from_secs(15))
            .expect("exits after draining");
        assert_eq!(status.code(), Some(0), "{}", self.stderr_text());
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the process wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn command(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove("PG_ORDERS_DATABASE_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Copies a pipe into a channel on a thread, so the child never blocks.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Runs `bin` expecting it to exit on its own (bad usage): its exit code
/// and stderr. Killed if it is still running after the timeout.
pub fn run_to_exit(bin: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = command(bin, args, env).spawn().unwrap();
    let stderr = drain(child.stderr.take().unwrap());
    let mut p = Proc {
        child,
        base: String::new(),
        stderr,
    };
    let status = p.wait_exit(TIMEOUT).expect("exits on its own");
    // The stderr thread ends with the pipe; give it a moment to deliver.
    std::thread::sleep(Duration::from_millis(50));
    (status.code(), p.stderr_text())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(TIMEOUT).build().unwrap()
}

/// A reply: status, headers, body (JSON if it parses, else a string).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls `url` until it answers `status`.
pub async fn wait_status(c: &reqwest::Client, url: &str, status: u16) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(r) = c.get(url).send().await {
            if r.status().as_u16() == status {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} never answered {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A scrape of Prometheus text.
pub struct Metrics(pub String);

impl Metrics {
    pub async fn scrape(c: &reqwest::Client, p: &Proc) -> Metrics {
        let r = c.get(p.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        Metrics(r.text().await.unwrap())
    }

    /// The sum of every series of `name` whose labels contain all of
    /// `labels` (`shard="0"`); 0 if there is none.
    pub fn sum(&self, name: &str, labels: &[&str]) -> u64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .filter(|(series, _)| labels.iter().all(|want| series.contains(want)))
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .sum()
    }

    /// How many series `name` has.
    pub fn series(&self, name: &str) -> usize {
        let prefix = format!("{name}{{");
        self.0.lines().filter(|l| l.starts_with(&prefix)).count()
    }
}
