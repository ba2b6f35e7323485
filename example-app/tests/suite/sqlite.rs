//! The store contract on `sqlite:PATH`, plus what only SQLite can show here
//! (a locked file makes the store unavailable).

use std::time::Duration;

use super::contract;
use super::util::*;

/// A fresh store file in its own temporary directory.
pub fn temp_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("events.db").display());
    (dir, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_append_and_idempotency() {
    let (_dir, url) = temp_store();
    contract::append_and_idempotency(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_writers_gap_free_and_converge() {
    let (_dir, url) = temp_store();
    contract::two_writers_gap_free(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_own_commits_interleaved_gap_free() {
    let (_dir, url) = temp_store();
    contract::own_commits_interleaved_gap_free(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_same_id_on_two_instances() {
    let (_dir, url) = temp_store();
    contract::same_id_on_two_instances(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill9_loses_no_ack() {
    let (_dir, url) = temp_store();
    contract::kill9_loses_no_ack(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_observable() {
    let (_dir, url) = temp_store();
    contract::group_commit_observable(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bad_inputs_append_nothing() {
    let (_dir, url) = temp_store();
    contract::bad_inputs_append_nothing(&url, &[]).await;
}

/// Another process holds the write lock: appends get 503 with Retry-After,
/// reads keep working, and writes resume once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_store_gives_503_then_recovers() {
    let (dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &["--append-timeout", "1s"]);
    let c = client();
    assert_eq!(
        post_order(&c, &a, &order_body("before", "u-0001", 1))
            .await
            .status,
        201
    );

    let path = dir.path().join("events.db");
    let locker = rusqlite_lock(&path);
    let r = post_order(&c, &a, &order_body("during", "u-0001", 1)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "store_unavailable");
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert_eq!(r.instance.as_deref(), Some("a"));
    assert_eq!(get_json(&c, &a, "/orders/before").await.status, 200);
    drop(locker);

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = post_order(&c, &a, &order_body("after", "u-0001", 1)).await;
        if r.status == 201 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Holds SQLite's write lock from this process until dropped.
fn rusqlite_lock(path: &std::path::Path) -> LockGuard {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let path = path.to_path_buf();
    let handle = std::thread::spawn(move || {
        let conn = example_app_sqlite_conn(&path);
        conn.execute_batch("BEGIN IMMEDIATE").expect("lock");
        ready_tx.send(()).expect("ready");
        let _ = rx.recv();
        conn.execute_batch("ROLLBACK").expect("unlock");
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("lock taken");
    LockGuard {
        release: Some(tx),
        handle: Some(handle),
    }
}

fn example_app_sqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    conn
}

struct LockGuard {
    release: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_many_appenders_every_subscriber_sees_each_once() {
    let (_dir, url) = temp_store();
    contract::many_appenders_every_subscriber_sees_each_once(&url).await;
}

/// Appends 100 events of ~1 KB at once (keys `k{chunk}-0..99`).
async fn append_100_kb(store: &dyn example_app::store::EventStore, chunk: u64) {
    let payload = format!("\"{}\"", "x".repeat(1000));
    let appends = (0..100).map(|i| {
        store.append(example_app::store::NewEvent {
            kind: "TestEvent".into(),
            key: format!("k{chunk}-{i}"),
            payload: payload.clone(),
        })
    });
    for r in futures::future::join_all(appends).await {
        r.expect("append");
    }
}

/// The writer leaves checkpoints to the poller thread: the WAL still gets
/// copied into the database file while appends go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let (dir, url) = temp_store();
    let store = open_store(&url).await;
    let db = dir.path().join("events.db");
    let initial = std::fs::metadata(&db).expect("db file").len();
    for chunk in 0..20 {
        append_100_kb(store.as_ref(), chunk).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let size = std::fs::metadata(&db).expect("db file").len();
        if size > initial + 1_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "2 MB appended, database file still {size} bytes (from {initial}): no checkpoint"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The WAL header's checkpoint sequence number (bytes 12..16, big-endian):
/// SQLite raises it each time a writer starts the WAL over from its start.
fn wal_restarts_so_far(wal: &std::path::Path) -> Option<u32> {
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(wal).ok()?;
    std::io::Read::read_exact(&mut file, &mut header).ok()?;
    Some(u32::from_be_bytes([
        header[12], header[13], header[14], header[15],
    ]))
}

/// Readers that never pause (a subscriber polling in each instance) keep a
/// passive checkpoint from ever restarting the WAL: without a restart it grew
/// to 446 MB in a 20 s demo at 10,000 orders/s. Past `wal_limit` the poller
/// restarts it, with a reader of its own busy the whole time. A restart may
/// be busy (a reader or the writer held up by a loaded machine) and waits
/// for the next checkpoint; counted from the WAL header, this test needs
/// three to pass, and without the restart it sees none in 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_restarts_past_its_limit_while_readers_keep_reading() {
    let (dir, url) = temp_store();
    let limit = 256 * 1024;
    let opts = example_app::store::StoreOptions {
        wal_limit: limit,
        ..Default::default()
    };
    let store = open_store_with(&url, opts).await;
    let db = dir.path().join("events.db");
    let wal = dir.path().join("events.db-wal");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).expect("reader");
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: i64 = conn
                    .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                        r.get(0)
                    })
                    .expect("read");
                reads += 1;
            }
            reads
        })
    };
    // Appends without a pause: an idle moment would let a passive
    // checkpoint finish and the WAL restart on its own.
    append_100_kb(store.as_ref(), 0).await;
    let first = wal_restarts_so_far(&wal).expect("a WAL header");
    let (mut restarts, mut biggest, mut chunk) = (0, 0, 1);
    let started = std::time::Instant::now();
    while restarts < 3 && started.elapsed() < Duration::from_secs(10) {
        append_100_kb(store.as_ref(), chunk).await;
        chunk += 1;
        biggest = biggest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        if let Some(now) = wal_restarts_so_far(&wal) {
            restarts = now.wrapping_sub(first);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("reader thread");
    assert!(reads > 0, "the reader never read");
    assert!(
        restarts >= 3,
        "{} bytes appended in {:?} with a {limit}-byte limit: the WAL restarted \
         {restarts} times and its file reached {biggest} bytes",
        chunk * 100 * 1000,
        started.elapsed()
    );
    assert_eq!(head(store.as_ref()).await, chunk * 100);
}
