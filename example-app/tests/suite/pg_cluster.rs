//! PostgreSQL for the tests: `HANDOVER_TEST_PG_URL` if set, else a throwaway
//! cluster started with `scripts/pg.sh` (and stopped when the last test using
//! it is done, also after a failure). Each test gets its own database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

/// A running cluster; stopped and removed on drop when we started it.
pub struct PgCluster {
    /// URL of the cluster's `handover` database (admin connection).
    pub url: String,
    dir: Option<tempfile::TempDir>,
}

fn pg_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh")
}

impl PgCluster {
    /// Starts a private cluster; panics with the script's output if it cannot.
    pub fn start_private() -> PgCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = pg_start(&dir.path().join("pg"));
        PgCluster {
            url,
            dir: Some(dir),
        }
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("pg"))
    }

    /// Stops the server, keeping its data (a store outage).
    pub fn stop(&self) {
        let dir = self
            .data_dir()
            .expect("only private clusters can be stopped");
        let out = Command::new(pg_sh())
            .arg("stop")
            .arg(&dir)
            .output()
            .expect("pg.sh stop");
        assert!(
            out.status.success(),
            "pg.sh stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) {
        let dir = self
            .data_dir()
            .expect("only private clusters can be restarted");
        let url = pg_start(&dir);
        assert_eq!(url, self.url, "restarted on another address");
    }
}

fn pg_start(dir: &Path) -> String {
    let out = Command::new(pg_sh())
        .arg("start")
        .arg(dir)
        .output()
        .expect("run scripts/pg.sh");
    assert!(
        out.status.success(),
        "PostgreSQL could not be started by scripts/pg.sh (set HANDOVER_TEST_PG_URL to use a running server):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(dir) = self.data_dir() {
            let _ = Command::new(pg_sh()).arg("stop").arg(dir).output();
        }
    }
}

static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());

/// The cluster the tests share; started on first use.
pub fn shared() -> Arc<PgCluster> {
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let c = Arc::new(match std::env::var("HANDOVER_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => PgCluster { url, dir: None },
        _ => PgCluster::start_private(),
    });
    *slot = Arc::downgrade(&c);
    c
}

/// A fresh database on a cluster, dropped at the end of the test.
pub struct TestDb {
    pub url: String,
    name: String,
    cluster: Arc<PgCluster>,
}

impl TestDb {
    pub async fn create(cluster: Arc<PgCluster>) -> TestDb {
        let name = format!("t_{:016x}", rand_u64());
        admin_exec(&cluster.url, &format!("CREATE DATABASE {name}")).await;
        let mut u = url::Url::parse(&cluster.url).expect("cluster url");
        u.set_path(&format!("/{name}"));
        TestDb {
            url: u.to_string(),
            name,
            cluster,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (url, sql) = (
            self.cluster.url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok((client, conn)) =
                        tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = client.batch_execute(&sql).await;
                    }
                });
            }
        })
        .join();
    }
}

async fn admin_exec(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    let driver = tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = driver.await;
}

fn rand_u64() -> u64 {
    rand::random()
}
