//! The demo's processes: where the executables are, a port both origins
//! can share, starting a server and reading its `listening` line, waiting
//! for a health URL.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

use super::{DemoError, A_IP, B_IP};
use crate::health::HealthClient;
use crate::process::Reaper;

/// Where the executables are.
pub fn bin_dir(explicit: Option<&Path>) -> Result<PathBuf, DemoError> {
    let dir = match explicit {
        Some(d) => d.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(|| DemoError::Setup("cannot find this executable's directory".into()))?,
    };
    for name in ["example-app", "edge"] {
        if !dir.join(name).is_file() {
            return Err(DemoError::Setup(format!(
                "{} not found in {}: build the workspace first (cargo build --release --workspace --bins) \
                 or set HANDOVER_BIN_DIR",
                name,
                dir.display()
            )));
        }
    }
    Ok(dir)
}

/// A temporary working directory (removed when dropped) and its path.
pub fn temp_workdir(prefix: &str) -> Result<(PathBuf, tempfile::TempDir), DemoError> {
    let t = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| DemoError::Setup(format!("cannot create a temp dir: {e}")))?;
    Ok((t.path().to_path_buf(), t))
}

/// A port free on both origin addresses, so A and B can share `origin_port`.
pub fn shared_free_port() -> Result<u16, DemoError> {
    for _ in 0..100 {
        let a = TcpListener::bind(SocketAddr::from((A_IP, 0))).map_err(|e| {
            DemoError::Setup(format!("cannot bind {A_IP}: {e} (is 127.0.0.0/8 on lo?)"))
        })?;
        let port = a
            .local_addr()
            .map_err(|e| DemoError::Setup(e.to_string()))?
            .port();
        if TcpListener::bind(SocketAddr::from((B_IP, port))).is_ok() {
            return Ok(port);
        }
    }
    Err(DemoError::Setup(format!(
        "no port free on both {A_IP} and {B_IP}"
    )))
}

/// A random hex token (never printed).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        // Not secret-grade, but the edge only listens on loopback for this run.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
pub struct EdgeListening {
    pub api: SocketAddr,
    pub proxy: SocketAddr,
}

#[derive(Deserialize)]
pub struct AppListening {
    pub addr: SocketAddr,
}

/// Spawns `cmd`, stderr to `log`, and reads its one JSON `listening` line from
/// stdout; the rest of stdout is appended to the log.
pub async fn spawn_listening(
    mut cmd: Command,
    log: &Path,
    reaper: &Reaper,
    what: &str,
) -> Result<(Child, String), DemoError> {
    let file = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", p.display())))
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(file(log)?)
        .process_group(0)
        .spawn()
        .map_err(|e| DemoError::Stage(format!("cannot start {what}: {e}")))?;
    if let Some(pid) = child.id() {
        reaper.track(pid);
    }
    let Some(stdout) = child.stdout.take() else {
        return Err(DemoError::Stage(format!("{what}: no stdout")));
    };
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    let line = match line {
        Ok(Ok(Some(l))) => l,
        Ok(_) => {
            return Err(DemoError::Stage(format!(
                "{what} exited before listening; see {}",
                log.display()
            )))
        }
        Err(_) => {
            return Err(DemoError::Stage(format!(
                "{what} did not print its listening line within 30s; see {}",
                log.display()
            )))
        }
    };
    let mut rest = file(log)?;
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = writeln!(rest, "{l}");
        }
    });
    Ok((child, line))
}

/// Starts the edge on `config` with its API and admin tokens (from the
/// environment, never a file), its log in `dir`; the child and where it listens.
pub async fn spawn_edge(
    bins: &Path,
    config: &Path,
    tokens: (&str, &str),
    dir: &Path,
    reaper: &Reaper,
) -> Result<(Child, EdgeListening), DemoError> {
    let mut cmd = Command::new(bins.join("edge"));
    cmd.arg("--config")
        .arg(config)
        .env(super::EDGE_TOKEN_ENV, tokens.0)
        .env(super::EDGE_ADMIN_TOKEN_ENV, tokens.1);
    let (child, line) = spawn_listening(cmd, &dir.join("edge.log"), reaper, "edge").await?;
    let edge = serde_json::from_str(&line)
        .map_err(|e| DemoError::Stage(format!("edge printed {line:?}: {e}")))?;
    Ok((child, edge))
}

/// A postgres URL's password is not for the terminal.
pub fn origin_url(addr: SocketAddr) -> Result<Url, DemoError> {
    Url::parse(&format!("http://{addr}/"))
        .map_err(|e| DemoError::Stage(format!("bad origin address {addr}: {e}")))
}

pub async fn wait_healthy(base: &Url, timeout: Duration) -> Result<(), DemoError> {
    let client = HealthClient::new(Duration::from_secs(2));
    let url = base
        .join("health")
        .map_err(|e| DemoError::Stage(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let p = client.probe(&url).await;
        if p.is_healthy() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DemoError::Stage(format!(
                "{url} not healthy within {}s: {}",
                timeout.as_secs(),
                p.describe()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
