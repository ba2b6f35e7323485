//! The edge binary as a child process, and the config text tests give it.

use super::{now_ns, ADMIN, HOST, TOKEN, ZONE_ID};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
