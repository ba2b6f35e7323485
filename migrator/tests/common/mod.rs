//! Helpers for the migrator's integration tests: the real binaries (built by
//! `cargo build --bins` into the same target dir), child processes that are
//! killed by pid when a test ends (also when it fails), and the stage (edge +
//! example-app A) that `migrator run` tests migrate away from.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub fn migrator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_migrator"))
}

/// `example-app` or `edge`, next to the migrator executable.
pub fn sibling_bin(name: &str) -> PathBuf {
    let p = migrator_bin().parent().expect("bin dir").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --bins` (same CARGO_TARGET_DIR) before these tests",
        p.display()
    );
    p
}

/// A child process ended by pid when dropped: SIGTERM, a grace period, SIGKILL.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exit, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        if self.wait_timeout(Duration::from_secs(20)).is_none() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Spawns a server and reads its one JSON `listening` line.
pub fn spawn_server(mut cmd: Command, name: &str, log: &Path) -> (Proc, serde_json::Value) {
    let log_file = std::fs::File::create(log).expect("log file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc {
        child,
        name: name.to_string(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{name} printed no listening line; see {}", log.display()));
    let v: serde_json::Value = serde_json::from_str(&line).expect("listening json");
    assert_eq!(v["event"], "listening", "{line}");
    (proc, v)
}

/// Output of a finished migrator run.
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the migrator with `args` (bounded by `timeout`), killing it on panic.
pub fn run_migrator(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Finished {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(migrator_bin());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut p = Proc {
        child: cmd.spawn().expect("spawn migrator"),
        name: "migrator".into(),
    };
    let status = p.wait_timeout(timeout);
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        drop(p);
        panic!("migrator {args:?} did not finish within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    Finished {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Is anything answering HTTP at `url`'s host:port?
pub fn answers(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Polls `f` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Counts ack-log lines per outcome: (total, ok, rejected, indeterminate).
pub fn count_acks(path: &Path) -> (u64, u64, u64, u64) {
    let text = std::fs::read_to_string(path).expect("ack log");
    let mut c = (0, 0, 0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rec: handover_contract::AckRecord = serde_json::from_str(line).expect("ack line");
        c.0 += 1;
        match rec.outcome {
            handover_contract::Outcome::Ok => c.1 += 1,
            handover_contract::Outcome::Rejected => c.2 += 1,
            handover_contract::Outcome::Indeterminate => c.3 += 1,
        }
    }
    c
}
