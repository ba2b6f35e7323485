//! `sqlite:PATH`: the embedded event store that the instances on one host share.
//!
//! - Durability: WAL with `synchronous=FULL`, so an acknowledged append is on
//!   disk before its reply, surviving `kill -9` and also a power cut. NORMAL
//!   would survive `kill -9` too (the WAL is in the page cache), but group
//!   commit already amortises the one fsync per transaction, so FULL costs
//!   little and keeps the promise stronger.
//! - Group commit: one writer thread owns the write connection and commits
//!   every append that queued up during the previous commit in a single
//!   `BEGIN IMMEDIATE` transaction.
//! - Order and gaps: SQLite admits one writer at a time and a transaction's
//!   rows become visible at once, so `position > cursor` never skips a row.
//! - Other processes: a poller thread watches `PRAGMA data_version` (changes
//!   when any other connection commits) every `poll_interval` and publishes
//!   the new head, so subscribers in this process wake within milliseconds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::mpsc;

use super::backend::{Backend, Shared, Store};
use super::group_commit::{gather, AppendRequest, Committed};
use super::status::{Task, SLOW_COMMIT};
use super::{StoreError, StoreOptions, StoredEvent};

/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for another process's write lock in short, even steps. SQLite's
/// own handler (`busy_timeout`) sleeps 1, 2, 5, 10 … up to 100 ms between
/// tries, so while A and B both write (the handover window) an append could
/// wait tens of milliseconds for a lock that was free after one group
/// commit (about one fsync). Returns false once [`BUSY_TIMEOUT`] is spent.
fn wait_for_lock(tries: i32) -> bool {
    wait_within(BUSY_TIMEOUT, tries)
}

/// How long a WAL restart waits for the write lock and for readers to move
/// off the WAL. It holds the write lock while it waits for readers, so every
/// append waits with it: a long read (a new instance's catch-up) makes it
/// give up and try again at the next checkpoint instead.
const RESTART_WAIT: Duration = Duration::from_millis(20);

/// [`wait_for_lock`], bounded by [`RESTART_WAIT`] instead.
fn wait_briefly(tries: i32) -> bool {
    wait_within(RESTART_WAIT, tries)
}

/// One busy-handler step of 250 µs, unless `limit` is spent after `tries`.
fn wait_within(limit: Duration, tries: i32) -> bool {
    const STEP: Duration = Duration::from_micros(250);
    let spent = STEP * u32::try_from(tries).unwrap_or(u32::MAX);
    if spent >= limit {
        return false;
    }
    std::thread::sleep(STEP);
    true
}

/// The SQLite event store.
pub type SqliteStore = Store<Sqlite>;

/// The SQLite side of a [`SqliteStore`]: the read connection; the writer and
/// poller threads run beside it.
pub struct Sqlite {
    path: PathBuf,
    reader: Arc<Mutex<Connection>>,
    /// Tells the poller thread to end when the store is dropped.
    stop: Arc<AtomicBool>,
}

fn sql_err(what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(wait_for_lock))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, WAL required"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    key      TEXT NOT NULL,
    payload  TEXT NOT NULL,
    UNIQUE (kind, key)
)";

impl Store<Sqlite> {
    /// Opens (creating if needed) the store file; a path that cannot hold a
    /// store is a configuration error.
    pub async fn open(path: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let p = path.clone();
        let (writer_conn, reader_conn, poller_conn, head, page_size) =
            tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                let config = |e: rusqlite::Error| {
                    StoreError::Config(format!("cannot open sqlite store {}: {e}", p.display()))
                };
                let w = connect(&p).map_err(config)?;
                w.execute_batch(SCHEMA).map_err(config)?;
                // Checkpoints run on the poller thread instead (see poller_loop).
                w.pragma_update(None, "wal_autocheckpoint", 0)
                    .map_err(config)?;
                let r = connect(&p).map_err(config)?;
                let poll = connect(&p).map_err(config)?;
                let head: i64 = r
                    .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                        r.get(0)
                    })
                    .map_err(config)?;
                let page_size: i64 = r
                    .query_row("PRAGMA page_size", [], |r| r.get(0))
                    .map_err(config)?;
                Ok((w, r, poll, head, page_size))
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("open task failed: {e}")))??;

        let shared = Arc::new(Shared::new(u64::try_from(head).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(opts.max_batch.max(1) * 4);
        let max_batch = opts.max_batch.max(1);
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, s, max_batch))
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
        let (s, st) = (shared.clone(), stop.clone());
        let checkpoints = Checkpoints::new(opts.wal_limit, page_size);
        let interval = opts.poll_interval;
        std::thread::Builder::new()
            .name("sqlite-poller".into())
            .spawn(move || poller_loop(poller_conn, s, st, interval, checkpoints))
            .map_err(|e| StoreError::Unavailable(format!("cannot start poller thread: {e}")))?;

        let backend = Sqlite {
            path,
            reader: Arc::new(Mutex::new(reader_conn)),
            stop,
        };
        Ok(Store::new(backend, tx, shared, opts.append_timeout))
    }
}

impl Sqlite {
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::Unavailable("reader connection poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Commits everything that queued up while the previous commit ran.
fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<AppendRequest>,
    shared: Arc<Shared>,
    max_batch: usize,
) {
    let mut batch: Vec<AppendRequest> = Vec::with_capacity(max_batch);
    // Whether the last commit failed for want of the write lock or the file
    // (not because the database refused the write).
    let mut unavailable = false;
    loop {
        let first = if unavailable {
            // An idle writer that could not get at the store proves it can
            // again by taking the write lock: an instance kept out of
            // traffic while unhealthy would otherwise never write to clear
            // it. A refused write is cleared only by the next commit.
            match rx.try_recv() {
                Ok(first) => first,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK").is_ok() {
                        shared.status.tasks.ok(Task::Writer);
                        unavailable = false;
                    } else {
                        std::thread::sleep(RECHECK);
                    }
                    continue;
                }
            }
        } else {
            match rx.blocking_recv() {
                Some(first) => first,
                None => return,
            }
        };
        gather(&mut batch, first, &mut rx, max_batch);
        let started = Instant::now();
        let outcome = commit_batch(&mut conn, &batch);
        let took = started.elapsed();
        let outcome = outcome.map(|(committed, phases)| {
            if took >= SLOW_COMMIT {
                phases.log(batch.len());
            }
            committed
        });
        unavailable = outcome.as_ref().is_err_and(store_away);
        let outcome = outcome.map_err(|e| {
            tracing::warn!(error = %e, batch = batch.len(), "sqlite group commit failed");
            format!("append failed: {e}")
        });
        shared.settle(&mut batch, outcome, took);
    }
}

/// How often a writer that could not get at the store checks again.
const RECHECK: Duration = Duration::from_millis(250);

/// Whether a failed commit means the store was out of reach (locked, busy,
/// an I/O error) rather than that it refused the write (a constraint, a
/// trigger).
fn store_away(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
    matches!(
        e.sqlite_error_code(),
        Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull)
    )
}

/// Where one commit's time went: a slow commit is the disk's doing (flush)
/// or the other process's (lock), or neither (this one was not running).
struct Phases {
    /// BEGIN IMMEDIATE: waiting for the write lock.
    lock: Duration,
    /// The inserts (pages into the WAL, in the page cache).
    write: Duration,
    /// COMMIT: the WAL's durable write (fsync).
    flush: Duration,
}

impl Phases {
    fn log(&self, appends: usize) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::info!(
            lock_ms = ms(self.lock),
            write_ms = ms(self.write),
            flush_ms = ms(self.flush),
            appends,
            "slow sqlite commit phases"
        );
    }
}

/// One transaction for the whole batch: per event, its position and, when the
/// key already existed, the stored payload; and where its time went.
fn commit_batch(
    conn: &mut Connection,
    batch: &[AppendRequest],
) -> rusqlite::Result<(Committed, Phases)> {
    let begin = Instant::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let lock = begin.elapsed();
    let mut out = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (kind, key, payload) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, key) DO NOTHING RETURNING position",
        )?;
        let mut existing =
            tx.prepare_cached("SELECT position, payload FROM events WHERE kind = ?1 AND key = ?2")?;
        for req in batch {
            let e = &req.event;
            let created: Option<i64> = insert
                .query_row(params![e.kind, e.key, e.payload], |r| r.get(0))
                .optional()?;
            let row = match created {
                Some(p) => (p, None),
                None => existing.query_row(params![e.kind, e.key], |r| {
                    Ok((r.get::<_, i64>(0)?, Some(r.get::<_, String>(1)?)))
                })?,
            };
            out.push((u64::try_from(row.0).unwrap_or(0), row.1));
        }
    }
    let write = begin.elapsed() - lock;
    let flush = Instant::now();
    tx.commit()?;
    let flush = flush.elapsed();
    Ok((out, Phases { lock, write, flush }))
}

/// How often the poller copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// What the poller needs to keep the WAL bounded.
struct Checkpoints {
    /// The WAL length in frames past which it is restarted
    /// (`StoreOptions::wal_limit` in bytes).
    limit_frames: i64,
}

impl Checkpoints {
    fn new(limit_bytes: u64, page_size: i64) -> Self {
        // Each WAL frame is a page plus its 24-byte header.
        let frame = u64::try_from(page_size.max(1) + 24).unwrap_or(4096 + 24);
        Checkpoints {
            limit_frames: i64::try_from(limit_bytes / frame).unwrap_or(i64::MAX),
        }
    }

    /// Copies the WAL into the database file (PASSIVE: never blocks a writer
    /// or reader), and restarts it once it has outgrown the limit.
    ///
    /// A passive checkpoint lets the next writer start the WAL over only
    /// when no reader holds a snapshot in it; with subscribers polling every
    /// few milliseconds in both instances that moment never comes, and the
    /// WAL grows for as long as the load lasts. RESTART holds off writers,
    /// copies what the passive run left, waits (at most [`RESTART_WAIT`]) for
    /// the readers of the moment to finish, and the next commit writes from
    /// the start of the file again: the file stays near the limit. At 10,000
    /// orders/s a restart took 0.4-9.4 ms; TRUNCATE, which also shrinks the
    /// file, took 28-46 ms (freeing the blocks).
    fn run(&self, conn: &Connection) {
        let started = Instant::now();
        // (busy, WAL frames in use, frames copied into the database file)
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        let frames = match passive {
            Err(e) => {
                tracing::debug!(error = %e, "sqlite checkpoint failed");
                return;
            }
            Ok((frames, copied)) => {
                // A slow one shows whether a slow commit flush ran beside it.
                if started.elapsed() >= SLOW_COMMIT {
                    tracing::info!(
                        checkpoint_ms = started.elapsed().as_secs_f64() * 1000.0,
                        frames,
                        copied,
                        "slow sqlite checkpoint"
                    );
                }
                frames
            }
        };
        if frames <= self.limit_frames {
            return;
        }
        let started = Instant::now();
        let restart = conn.busy_handler(Some(wait_briefly)).and_then(|()| {
            conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
        });
        if let Err(e) = conn.busy_handler(Some(wait_for_lock)) {
            tracing::debug!(error = %e, "sqlite busy handler not restored");
        }
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        match restart {
            Ok(0) => tracing::info!(wal_frames = frames, took_ms, "sqlite WAL restarted"),
            // Busy: a reader or writer outlasted the busy handler; next time.
            Ok(_) => tracing::debug!(wal_frames = frames, took_ms, "sqlite WAL restart was busy"),
            Err(e) => tracing::debug!(error = %e, "sqlite WAL restart failed"),
        }
    }
}

/// Publishes the head whenever another connection (any process) commits,
/// and checkpoints the WAL every `CHECKPOINT_EVERY` ([`Checkpoints::run`]).
/// With SQLite's automatic checkpoint, the commit that crosses 1,000 WAL
/// pages copies them and fsyncs the database file inside the writer's
/// commit, so every append of that batch waits for it.
fn poller_loop(
    conn: Connection,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    interval: Duration,
    checkpoints: Checkpoints,
) {
    let mut last_version: Option<i64> = None;
    let mut last_checkpoint = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            last_checkpoint = std::time::Instant::now();
            checkpoints.run(&conn);
        }
        let mut step = || -> rusqlite::Result<Option<u64>> {
            let v: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
            if last_version == Some(v) {
                return Ok(None);
            }
            last_version = Some(v);
            let head: i64 =
                conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                    r.get(0)
                })?;
            Ok(Some(u64::try_from(head).unwrap_or(0)))
        };
        match step() {
            Ok(Some(head)) => shared.seen(Task::Poller, head),
            Ok(None) => shared.status.tasks.ok(Task::Poller),
            Err(e) => {
                tracing::warn!(error = %e, "sqlite poll failed");
                shared
                    .status
                    .tasks
                    .failed(Task::Poller, format!("poll failed: {e}"));
            }
        }
        std::thread::sleep(interval);
    }
}

impl Backend for Sqlite {
    const NAME: &'static str = "sqlite";

    fn read_after(
        &self,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        async move {
            self.with_reader(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT position, kind, key, payload FROM events
                         WHERE position > ?1 ORDER BY position LIMIT ?2",
                    )
                    .map_err(|e| sql_err("read", e))?;
                let rows = stmt
                    .query_map(params![after, limit], |r| {
                        Ok(StoredEvent {
                            position: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                            kind: r.get(1)?,
                            key: r.get(2)?,
                            payload: r.get(3)?,
                        })
                    })
                    .map_err(|e| sql_err("read", e))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(|e| sql_err("read", e))
            })
            .await
        }
        .boxed()
    }

    fn read_head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let head = self
                .with_reader(|conn| {
                    conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map_err(|e| sql_err("head", e))
                })
                .await?;
            Ok(u64::try_from(head).unwrap_or(0))
        }
        .boxed()
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_waited_for_in_short_steps_until_the_timeout() {
        let t = std::time::Instant::now();
        assert!(wait_for_lock(0), "the first try waits");
        assert!(t.elapsed() < Duration::from_millis(50), "one step is short");
        let last = i32::try_from(BUSY_TIMEOUT.as_micros() / 250).unwrap_or(i32::MAX);
        assert!(wait_for_lock(last - 1));
        assert!(!wait_for_lock(last), "gives up after BUSY_TIMEOUT");
        assert!(!wait_for_lock(i32::MAX));
    }
}
