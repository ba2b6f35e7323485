//! `postgres://user:pass@host:port/db`: the event store instances on
//! different hosts share.
//!
//! - Gap-free order: positions are not taken from a sequence (sequences hand
//!   out numbers at insert time but transactions commit in any order, so a
//!   reader of `position > cursor` could pass a lower position that commits
//!   later, and never see it). Instead every append transaction first locks
//!   the single row of `event_head` (`SELECT … FOR UPDATE`) and numbers its
//!   events from it. Appending transactions are thereby serialized: the next
//!   one gets the lock only after the previous has committed, and PostgreSQL
//!   makes a commit visible before it releases its locks. So positions are
//!   dense, commit in position order, and `position > cursor` never skips.
//!   Group commit keeps this cheap: each instance's writer task puts every
//!   append that queued up into one transaction, so the lock is taken once
//!   per batch, not per order.
//! - Idempotency: `UNIQUE (kind, key)`. Under the lock the writer looks the
//!   batch's keys up and appends only the missing ones; the constraint is the
//!   backstop that makes a second event per key impossible whatever a writer does.
//! - Low lag: the appending transaction sends `NOTIFY handover_events, '<head>'`,
//!   delivered at commit; every instance `LISTEN`s and wakes its subscribers.
//!   After (re)connecting the listener reads the head, and subscribers poll
//!   as a safety net, so a notification lost with a connection costs latency,
//!   never an event.
//! - Restarts: each task (writer, reader, listener) reconnects by itself; while
//!   the server is away appends fail fast (503) and `/health` reports it.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};
use tokio_util::sync::CancellationToken;

use super::backend::{Backend, Shared, Store};
use super::group_commit::{gather, AppendRequest, Committed};
use super::status::Task;
use super::url::StoreUrl;
use super::{StoreError, StoreOptions, StoredEvent};

const CHANNEL: &str = "handover_events";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position BIGINT PRIMARY KEY,
    kind     TEXT NOT NULL,
    key      TEXT NOT NULL,
    payload  TEXT NOT NULL,
    UNIQUE (kind, key)
);
CREATE TABLE IF NOT EXISTS event_head (
    id       BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    position BIGINT NOT NULL
);
INSERT INTO event_head (id, position) VALUES (TRUE, 0) ON CONFLICT (id) DO NOTHING;
";

/// Serializes schema creation when several instances start at once.
const SCHEMA_LOCK: i64 = 0x68616e646f766572; // "handover"

/// The PostgreSQL event store.
pub type PostgresStore = Store<Postgres>;

/// The PostgreSQL side of a [`PostgresStore`]: the read connection; the
/// writer and listener tasks run beside it.
pub struct Postgres {
    url: StoreUrl,
    config: Config,
    reader: Mutex<Option<Reader>>,
    /// Ends the listener task when the store is dropped.
    cancel: CancellationToken,
    /// How long a read may wait for the server.
    timeout: Duration,
}

fn pg_err(what: &str, e: &tokio_postgres::Error) -> String {
    // tokio-postgres errors name the server's message, never the password.
    match e.as_db_error() {
        Some(db) => format!("{what}: {}: {}", db.severity(), db.message()),
        None => format!("{what}: {e}"),
    }
}

/// Connects and drives the connection in the background.
async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

impl Store<Postgres> {
    /// Connects within `opts.connect_timeout` and creates the schema; an
    /// unreachable server or bad credentials are a configuration error.
    pub async fn open(url: &StoreUrl, opts: StoreOptions) -> Result<Self, StoreError> {
        let config_err = |msg: String| StoreError::Config(format!("{url}: {msg}"));
        let mut config = Config::from_str(&url.expose())
            .map_err(|e| config_err(format!("invalid postgres URL: {e}")))?;
        config
            .connect_timeout(opts.connect_timeout)
            .application_name("handover-example-app")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        let mut client = tokio::time::timeout(opts.connect_timeout, connect(&config))
            .await
            .map_err(|_| config_err(format!("no connection within {:?}", opts.connect_timeout)))?
            .map_err(|e| config_err(pg_err("cannot connect", &e)))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| config_err(pg_err("schema", &e)))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(|e| config_err(pg_err("schema lock", &e)))?;
        tx.batch_execute(SCHEMA)
            .await
            .map_err(|e| config_err(pg_err("cannot create schema", &e)))?;
        tx.commit()
            .await
            .map_err(|e| config_err(pg_err("schema", &e)))?;
        let head = read_head(&client)
            .await
            .map_err(|e| config_err(pg_err("head", &e)))?;
        let reader = Reader::prepare(client)
            .await
            .map_err(|e| config_err(pg_err("prepare", &e)))?;

        let shared = Arc::new(Shared::new(head));
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::channel(opts.max_batch.max(1) * 4);
        tokio::spawn(writer_loop(
            config.clone(),
            rx,
            shared.clone(),
            opts.max_batch.max(1),
            opts.append_timeout,
        ));
        tokio::spawn(listener_loop(
            config.clone(),
            shared.clone(),
            cancel.clone(),
        ));
        let backend = Postgres {
            url: url.clone(),
            config,
            reader: Mutex::new(Some(reader)),
            cancel,
            timeout: opts.append_timeout,
        };
        Ok(Store::new(backend, tx, shared, opts.append_timeout))
    }
}

impl Postgres {
    /// Runs `f` on the reader connection, reconnecting first if it was lost.
    async fn read<T>(
        &self,
        what: &'static str,
        f: impl for<'c> FnOnce(&'c Reader) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        let attempt = async {
            let mut slot = self.reader.lock().await;
            if slot.as_ref().is_none_or(|r| r.client.is_closed()) {
                let client = connect(&self.config)
                    .await
                    .map_err(|e| StoreError::Unavailable(pg_err("reconnect", &e)))?;
                *slot = Some(
                    Reader::prepare(client)
                        .await
                        .map_err(|e| StoreError::Unavailable(pg_err("prepare", &e)))?,
                );
            }
            let client = slot
                .as_ref()
                .ok_or_else(|| StoreError::Unavailable("no reader connection".into()))?;
            match f(client).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    *slot = None;
                    Err(StoreError::Unavailable(pg_err(what, &e)))
                }
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("{what}: no answer within {:?}", self.timeout))
            })?
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The reader's connection and its prepared read (one round trip per read,
/// not a parse and an execute).
struct Reader {
    client: Client,
    read_after: Statement,
}

impl Reader {
    async fn prepare(client: Client) -> Result<Reader, tokio_postgres::Error> {
        let read_after = client
            .prepare(
                "SELECT position, kind, key, payload FROM events
                 WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .await?;
        Ok(Reader { client, read_after })
    }
}

async fn read_head(client: &Client) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT position FROM event_head", &[])
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Commits everything that queued up while the previous commit ran.
async fn writer_loop(
    config: Config,
    mut rx: mpsc::Receiver<AppendRequest>,
    shared: Arc<Shared>,
    max_batch: usize,
    timeout: Duration,
) {
    let mut writer: Option<Writer> = None;
    let mut batch: Vec<AppendRequest> = Vec::with_capacity(max_batch);
    // Whether the last commit failed because the server was away (not
    // because it refused the write).
    let mut unavailable = false;
    loop {
        let first = tokio::select! {
            first = rx.recv() => match first {
                Some(first) => first,
                None => return,
            },
            // An idle writer that lost the server proves it is back by
            // connecting: an instance kept out of traffic while unhealthy
            // would otherwise never write again to clear it. A refused
            // write is cleared only by the next commit.
            _ = tokio::time::sleep(RECHECK), if unavailable => {
                if let Ok(Ok(w)) = tokio::time::timeout(timeout, Writer::connect(&config)).await {
                    writer = Some(w);
                    shared.status.tasks.ok(Task::Writer);
                    unavailable = false;
                }
                continue;
            }
        };
        gather(&mut batch, first, &mut rx, max_batch);
        let started = Instant::now();
        // Err((message, the server was away)).
        let result: Result<Committed, (String, bool)> = async {
            if writer.as_ref().is_none_or(|w| w.client.is_closed()) {
                let w = tokio::time::timeout(timeout, Writer::connect(&config))
                    .await
                    .map_err(|_| (format!("connect: no answer within {timeout:?}"), true))?;
                writer = Some(w.map_err(|e| (pg_err("connect", &e), true))?);
            }
            let w = writer.as_ref().ok_or(("no connection".to_string(), true))?;
            // A server that stops answering must not wedge the writer.
            match tokio::time::timeout(timeout, commit_batch(w, &batch)).await {
                Ok(r) => r.map_err(|e| (pg_err("append", &e), server_away(&e))),
                Err(_) => Err((format!("append: no answer within {timeout:?}"), true)),
            }
        }
        .await;
        let took = started.elapsed();
        unavailable = matches!(result, Err((_, true)));
        let result = result.map_err(|(msg, _)| msg);
        if let Err(msg) = &result {
            // The outcome of a failed commit is unknown to the caller (503);
            // a fresh connection next time rules out a wedged session
            // (closing this one rolls back whatever was left open).
            writer = None;
            tracing::warn!(error = %msg, batch = batch.len(), "postgres group commit failed");
        }
        shared.settle(&mut batch, result, took);
    }
}

/// How often a writer that lost the server checks whether it is back.
const RECHECK: Duration = Duration::from_millis(500);

/// Whether a failed commit means the server was away (a lost connection, a
/// server shutting down, out of resources) rather than that it refused the
/// write (a constraint, a trigger, bad SQL).
fn server_away(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        // 08: connection exception, 53: insufficient resources,
        // 57: operator intervention (shutdown, cancel).
        Some(db) => matches!(&db.code().code()[..2], "08" | "53" | "57"),
    }
}

/// The writer's connection and its prepared statements.
struct Writer {
    client: Client,
    lock_head: Statement,
    existing: Statement,
    insert: Statement,
    advance: Statement,
    notify: Statement,
}

impl Writer {
    async fn connect(config: &Config) -> Result<Writer, tokio_postgres::Error> {
        let client = connect(config).await?;
        let (lock_head, existing, insert, advance, notify) = futures::try_join!(
            client.prepare("SELECT position FROM event_head FOR UPDATE"),
            client.prepare(
                "SELECT e.kind, e.key, e.position, e.payload
                 FROM events e
                 JOIN unnest($1::text[], $2::text[]) AS b(kind, key)
                   ON e.kind = b.kind AND e.key = b.key"
            ),
            client.prepare(
                "INSERT INTO events (position, kind, key, payload)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])"
            ),
            client.prepare("UPDATE event_head SET position = $1"),
            client.prepare("SELECT pg_notify($1, $2)"),
        )?;
        Ok(Writer {
            client,
            lock_head,
            existing,
            insert,
            advance,
            notify,
        })
    }
}

/// One transaction for the batch under the `event_head` row lock: per
/// request, its position and, when the key already existed, the stored payload.
///
/// Two round trips: the statements of each step are pipelined (sent
/// together, run by the server in order). Any failed statement fails the
/// batch; the caller then drops the connection, which rolls back.
async fn commit_batch(
    w: &Writer,
    batch: &[AppendRequest],
) -> Result<Committed, tokio_postgres::Error> {
    let c = &w.client;
    let kinds: Vec<&str> = batch.iter().map(|r| r.event.kind.as_str()).collect();
    let keys: Vec<&str> = batch.iter().map(|r| r.event.key.as_str()).collect();
    // The lookup runs after the lock is granted (same session, in order),
    // so it sees every event committed before this transaction.
    let lookup: [&(dyn ToSql + Sync); 2] = [&kinds, &keys];
    let (_, head_row, rows) = futures::try_join!(
        c.batch_execute("BEGIN"),
        c.query_one(&w.lock_head, &[]),
        c.query(&w.existing, &lookup),
    )?;
    let head: i64 = head_row.get(0);
    let mut known: HashMap<(String, String), (i64, String)> = rows
        .into_iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
        .collect();

    let mut next = head;
    let (mut positions, mut new_kinds, mut new_keys, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(batch.len());
    for req in batch {
        let e = &req.event;
        let k = (e.kind.clone(), e.key.clone());
        if let Some((position, payload)) = known.get(&k) {
            out.push((u64::try_from(*position).unwrap_or(0), Some(payload.clone())));
            continue;
        }
        next += 1;
        positions.push(next);
        new_kinds.push(e.kind.as_str());
        new_keys.push(e.key.as_str());
        payloads.push(e.payload.as_str());
        out.push((u64::try_from(next).unwrap_or(0), None));
        // A second request for the same key in this batch gets this event.
        known.insert(k, (next, e.payload.clone()));
    }
    if next > head {
        let head_text = next.to_string();
        let rows: [&(dyn ToSql + Sync); 4] = [&positions, &new_kinds, &new_keys, &payloads];
        let advance: [&(dyn ToSql + Sync); 1] = [&next];
        let notify: [&(dyn ToSql + Sync); 2] = [&CHANNEL, &head_text];
        futures::try_join!(
            c.execute(&w.insert, &rows),
            c.execute(&w.advance, &advance),
            c.execute(&w.notify, &notify),
            c.batch_execute("COMMIT"),
        )?;
    } else {
        c.batch_execute("COMMIT").await?;
    }
    Ok(out)
}

/// `LISTEN`s for commits of any instance and publishes the head; reconnects
/// with a short backoff while the server is away (doubling while it stays
/// away, from the start again once a session was up).
async fn listener_loop(config: Config, shared: Arc<Shared>, cancel: CancellationToken) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut listened = false;
        let session = async {
            let (client, mut connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| pg_err("listen connect", &e))?;
            // Dropped when the connection ends: tells the session it is lost.
            let (alive, mut lost) = mpsc::channel::<()>(1);
            let notified = shared.clone();
            // Publishes straight from the connection's task: one wake-up
            // fewer between a commit and its subscribers.
            let driver = tokio::spawn(async move {
                let _alive = alive;
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(msg) = messages.next().await {
                    match msg {
                        Ok(AsyncMessage::Notification(n)) => {
                            if let Ok(head) = n.payload().parse() {
                                notified.handoff.publish_head(head);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "listen connection failed");
                            break;
                        }
                    }
                }
            });
            let result = async {
                client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .map_err(|e| pg_err("listen", &e))?;
                // Anything committed before LISTEN took effect.
                let head = read_head(&client).await.map_err(|e| pg_err("head", &e))?;
                shared.seen(Task::Listener, head);
                listened = true;
                tokio::select! {
                    _ = cancel.cancelled() => Ok(()),
                    _ = lost.recv() => Err("listen connection lost".to_string()),
                }
            }
            .await;
            driver.abort();
            result
        };
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = session => r,
        };
        match result {
            Ok(()) => return,
            Err(msg) => {
                tracing::warn!(error = %msg, "postgres listener down; reconnecting");
                shared.status.tasks.failed(Task::Listener, msg);
            }
        }
        if listened {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

impl Backend for Postgres {
    const NAME: &'static str = "postgres";

    fn read_after(
        &self,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        async move {
            let rows = self
                .read("read", move |r| {
                    async move { r.client.query(&r.read_after, &[&after, &limit]).await }.boxed()
                })
                .await?;
            Ok(rows
                .into_iter()
                .map(|r| StoredEvent {
                    position: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                    kind: r.get(1),
                    key: r.get(2),
                    payload: r.get(3),
                })
                .collect())
        }
        .boxed()
    }

    fn read_head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.read("head", |r| {
            async move { read_head(&r.client).await }.boxed()
        })
        .boxed()
    }

    fn describe(&self) -> String {
        self.url.to_string()
    }
}
