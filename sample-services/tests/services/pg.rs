//! A PostgreSQL database for one test: on the server in
//! `HANDOVER_TEST_PG_URL` if set, else on a throwaway cluster that
//! scripts/pg.sh starts (and stops again when the test ends, also on
//! failure). The database is dropped at the end either way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

pub struct TestDb {
    /// `postgres://…/<this test's database>`.
    pub url: String,
    admin_url: String,
    name: String,
    /// Set when the cluster is ours to stop.
    cluster: Option<tempfile::TempDir>,
}

fn pg_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh")
}

fn pg_sh_run(action: &str, dir: &Path) -> String {
    let out = Command::new(pg_sh()).arg(action).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/pg.sh {action} failed (set HANDOVER_TEST_PG_URL to use a running server):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TestDb {
    pub async fn create() -> TestDb {
        let (admin_url, cluster) = match std::env::var("HANDOVER_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let dir = tempfile::tempdir().unwrap();
                (pg_sh_run("start", &dir.path().join("pg")), Some(dir))
            }
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("sample_{}_{nanos}", std::process::id());
        connect(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (server, _) = admin_url.rsplit_once('/').unwrap();
        TestDb {
            url: format!("{server}/{name}"),
            admin_url,
            name,
            cluster,
        }
    }

    /// True when the cluster was started for this test (it checks passwords).
    pub fn is_private(&self) -> bool {
        self.cluster.is_some()
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.cluster {
            // Never panic in drop (it may run while a failed test unwinds).
            let _ = Command::new(pg_sh())
                .arg("stop")
                .arg(dir.path().join("pg"))
                .output();
            return;
        }
        let (url, sql) = (
            self.admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { connect(&url).await.batch_execute(&sql).await })
        })
        .join();
    }
}
