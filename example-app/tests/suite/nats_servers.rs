//! NATS JetStream for the tests: `HANDOVER_TEST_NATS_URL` (servers without a
//! stream: `nats://[user:pass@]host:port[,…]`) if set, else a throwaway
//! server started with `scripts/nats.sh` (and stopped when the last test
//! using it is done, also after a failure). Each test gets its own stream.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

/// Running servers; stopped (by pid, by the script) on drop when we started them.
pub struct NatsServers {
    /// `nats://user:pass@host:port[,…]`: a store URL without `/STREAM`.
    pub url: String,
    dir: Option<tempfile::TempDir>,
}

fn nats_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats.sh")
}

fn script(args: &[&str], dir: &Path) -> String {
    let out = Command::new(nats_sh())
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        .output()
        .expect("run scripts/nats.sh");
    assert!(
        out.status.success(),
        "scripts/nats.sh {} failed (set HANDOVER_TEST_NATS_URL to use running servers):\n{}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl NatsServers {
    /// One server with JetStream.
    pub fn single() -> NatsServers {
        Self::start("start")
    }

    /// Three clustered servers (streams default to R3).
    pub fn cluster() -> NatsServers {
        Self::start("cluster")
    }

    fn start(how: &str) -> NatsServers {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = script(&[how], &dir.path().join("nats"));
        NatsServers {
            url,
            dir: Some(dir),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .expect("only servers we started can be killed")
            .path()
            .join("nats")
    }

    /// A store URL on these servers with a fresh stream.
    pub fn store_url(&self) -> String {
        format!("{}/t{:016x}", self.url, rand::random::<u64>())
    }

    /// `kill -9` node `n` (`1`..`3`, or `leader:STREAM`); returns its number.
    pub fn kill(&self, n: &str) -> String {
        script(&["kill", n], &self.data_dir())
    }

    /// Starts node `n` again on its ports and data; returns once it is ready.
    pub fn restart(&self, n: &str) {
        script(&["restart", n], &self.data_dir());
    }
}

impl Drop for NatsServers {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new(nats_sh())
                .arg("stop")
                .arg(dir.path().join("nats"))
                .output();
        }
    }
}

static SHARED: Mutex<Weak<NatsServers>> = Mutex::new(Weak::new());

/// The single server the tests share; started on first use.
pub fn shared() -> Arc<NatsServers> {
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let s = Arc::new(match std::env::var("HANDOVER_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => NatsServers { url, dir: None },
        _ => NatsServers::single(),
    });
    *slot = Arc::downgrade(&s);
    s
}
