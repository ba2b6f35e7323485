//! PostgreSQL for tests: `HANDOVER_TEST_PG_URL`, or a throwaway cluster
//! started by `scripts/pg.sh` and stopped when the guard drops.

use std::path::{Path, PathBuf};

/// PostgreSQL: `HANDOVER_TEST_PG_URL`, or a cluster of our own, stopped on drop.
pub struct Pg {
    pub url: String,
    dir: Option<tempfile::TempDir>,
}

/// The repo's PostgreSQL script.
pub fn pg_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh")
}

impl Pg {
    pub fn start() -> Pg {
        if let Ok(url) = std::env::var("HANDOVER_TEST_PG_URL") {
            if !url.is_empty() {
                return Pg { url, dir: None };
            }
        }
        Pg::start_owned()
    }

    /// A cluster of our own, whatever the environment says: one a test may
    /// stop and start (`scripts/pg.sh stop|start` on [`Pg::data`]).
    pub fn start_owned() -> Pg {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new(pg_sh())
            .arg("start")
            .arg(dir.path().join("pg"))
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            out.status.success(),
            "PostgreSQL could not be started by scripts/pg.sh (set HANDOVER_TEST_PG_URL to use a running server):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Pg {
            url,
            dir: Some(dir),
        }
    }
}

impl Pg {
    /// The directory `scripts/pg.sh` keeps this cluster in.
    pub fn data(&self) -> PathBuf {
        match &self.dir {
            Some(d) => d.path().join("pg"),
            None => PathBuf::new(),
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::process::Command::new(pg_sh())
                .arg("stop")
                .arg(dir.path().join("pg"))
                .output();
        }
    }
}
