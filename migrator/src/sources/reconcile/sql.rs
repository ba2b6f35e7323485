//! `reconcile.kind = "sql"`: a query against the service's own database —
//! PostgreSQL (`postgres://…`) or SQLite (`sqlite:PATH`) — returning the id
//! column first and, optionally, the content second.
//!
//! - Read-only: PostgreSQL in a `READ ONLY` transaction, SQLite opened
//!   read-only. Reconciling never writes to the store it judges.
//! - Streamed: PostgreSQL rows come through a portal (a cursor) in batches,
//!   SQLite rows one by one on a blocking thread; never the whole result.
//! - `{run}` is bound as a parameter (`$1::text`, `?1`), never pasted into
//!   the SQL, so a run id cannot change what the query does.
//! - The URL's password is in no message, report or `Debug`: every text
//!   that leaves this file goes through [`SqlOrders::scrub`].
//!
//! Content: a text column is digested as its text ([`text_digest`]), a
//! number as its decimal text, a `json`/`jsonb` column as its JSON value
//! ([`content_digest`]) — the digests the feeder records for what it sent.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use handover_contract::order::{content_digest, text_digest};
use tokio_postgres::types::{FromSql, Type};

use super::{SqlListing, StoredOrders, Streamed, RUN};
use crate::reconcile::ledger::{Ledger, OrderView};
use crate::reconcile::{ReconcileError, ReconcileOptions};
use crate::sources::{error_chain, SourceError};

/// Rows fetched from the PostgreSQL portal at a time.
const BATCH: i32 = 5_000;

/// Where the query runs.
#[derive(Clone)]
enum Database {
    Postgres(Box<tokio_postgres::Config>),
    Sqlite(PathBuf),
}

/// A query against the service's database.
#[derive(Clone)]
pub struct SqlOrders {
    db: Database,
    /// The URL with its password masked.
    shown: String,
    /// What must never be printed (the password, raw and percent-decoded).
    secrets: Vec<String>,
    query: String,
    uses_run: bool,
    idle: Duration,
}

impl std::fmt::Debug for SqlOrders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlOrders")
            .field("url", &self.shown)
            .field("query", &self.query)
            .finish()
    }
}

impl SqlListing {
    /// See [`super::ReconcilePlan::validate`].
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: &str, m: String| Err((key.to_string(), m));
        match (&self.url, &self.url_env) {
            (Some(_), Some(_)) => {
                return err("reconcile.url", "give url or url_env, not both".into())
            }
            (None, None) => {
                return err(
                    "reconcile.url",
                    "missing: postgres://user@host/db or sqlite:PATH (or url_env naming the variable that holds it)".into(),
                )
            }
            (Some(url), None) => check_url(url).map_err(|m| ("reconcile.url".to_string(), m))?,
            (None, Some(var)) => {
                let ok = !var.is_empty()
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !var.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    return err(
                        "reconcile.url_env",
                        format!("{var:?} is not an environment variable name"),
                    );
                }
            }
        }
        if self.query.trim().is_empty() {
            return err(
                "reconcile.query",
                "is empty (it must return the id column, and optionally the content)".into(),
            );
        }
        placeholders(&self.query).map_err(|m| ("reconcile.query".to_string(), m))?;
        Ok(())
    }
}

/// `postgres://…`, `postgresql://…` or `sqlite:PATH`.
fn check_url(url: &str) -> Result<(), String> {
    let shown = crate::redact::passwords(url);
    if let Some(path) = url.strip_prefix("sqlite:") {
        if path.trim_start_matches("//").is_empty() {
            return Err("sqlite: has no path (expected sqlite:PATH)".into());
        }
        return Ok(());
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return url::Url::parse(url)
            .map(|_| ())
            .map_err(|e| format!("{shown} is not a URL ({e})"));
    }
    Err(format!(
        "{shown:?}: expected postgres://user@host:port/db or sqlite:PATH"
    ))
}

/// Where `{…}` placeholders are in `query`, outside quoted strings and
/// identifiers; only `{run}` exists, and it may not be inside quotes (it is
/// bound as a parameter: write `{run} || '-%'`, not `'{run}-%'`).
fn placeholders(query: &str) -> Result<Vec<usize>, String> {
    let mut at = Vec::new();
    let mut quote: Option<char> = None;
    for (i, c) in query.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '{') if query[i..].starts_with(RUN) => {
                return Err(format!(
                    "{RUN} is inside a quoted string; it is bound as a parameter, so write e.g. `id LIKE {RUN} || '-%'`"
                ))
            }
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{') => {
                if query[i..].starts_with(RUN) {
                    at.push(i);
                } else if let Some(name) = placeholder_name(&query[i..]) {
                    return Err(format!("unknown placeholder {{{name}}} (the only one is {RUN})"));
                }
            }
            _ => {}
        }
    }
    Ok(at)
}

/// `name` of a `{name}` at the start of `text`, if it is one.
fn placeholder_name(text: &str) -> Option<&str> {
    let end = text.find('}')?;
    let name = &text[1..end];
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

/// `query` with each `{run}` replaced by `param`.
fn bind_run(query: &str, param: &str) -> String {
    let Ok(at) = placeholders(query) else {
        return query.to_string();
    };
    let mut out = String::with_capacity(query.len() + 8);
    let mut last = 0;
    for i in at {
        out.push_str(&query[last..i]);
        out.push_str(param);
        last = i + RUN.len();
    }
    out.push_str(&query[last..]);
    out
}

impl SqlOrders {
    /// Resolves the URL (`url`, or the variable `url_env` names) and checks
    /// its form; connects to nothing yet.
    pub fn new(listing: &SqlListing, opts: &ReconcileOptions) -> Result<SqlOrders, ReconcileError> {
        let key_err = |key: &str, what: String| {
            ReconcileError::Source(SourceError::Unexpected {
                key: key.into(),
                what,
            })
        };
        listing.validate().map_err(|(key, m)| key_err(&key, m))?;
        let (url, key) = match (&listing.url, &listing.url_env) {
            (Some(url), _) => (url.clone(), "reconcile.url"),
            (None, Some(var)) => {
                let url = std::env::var(var).map_err(|_| {
                    ReconcileError::Source(SourceError::Missing {
                        key: "reconcile.url_env".into(),
                        what: format!("the environment variable {var} is not set"),
                    })
                })?;
                check_url(&url).map_err(|m| key_err("reconcile.url_env", m))?;
                (url, "reconcile.url_env")
            }
            (None, None) => return Err(key_err("reconcile.url", "missing".into())),
        };
        let mut secrets = Vec::new();
        let db = match url.strip_prefix("sqlite:") {
            Some(path) => Database::Sqlite(PathBuf::from(path.strip_prefix("//").unwrap_or(path))),
            None => {
                if let Ok(u) = url::Url::parse(&url) {
                    if let Some(p) = u.password() {
                        let decoded = url::form_urlencoded::parse(format!("p={p}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned());
                        secrets.push(p.to_string());
                        secrets.extend(decoded.filter(|d| !d.is_empty()));
                    }
                }
                let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
                    key_err(
                        key,
                        format!(
                            "{}: {}",
                            crate::redact::passwords(&url),
                            scrub_with(&secrets, &e.to_string())
                        ),
                    )
                })?;
                config.connect_timeout(opts.request_timeout);
                Database::Postgres(Box::new(config))
            }
        };
        let uses_run = placeholders(&listing.query).is_ok_and(|at| !at.is_empty());
        Ok(SqlOrders {
            db,
            shown: crate::redact::passwords(&url),
            secrets,
            query: listing.query.clone(),
            uses_run,
            idle: opts.request_timeout.max(Duration::from_secs(60)),
        })
    }

    /// `text` with the password masked, however it got there.
    fn scrub(&self, text: &str) -> String {
        scrub_with(&self.secrets, text)
    }

    /// A failing query or connection as an error naming `key`.
    fn failed(&self, key: &str, what: &str, e: &dyn std::error::Error) -> SourceError {
        SourceError::Unexpected {
            key: key.into(),
            what: self.scrub(&format!("{}: {what}: {}", self.shown, error_chain(e))),
        }
    }

    /// Connects to PostgreSQL and drives the connection in the background.
    async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<tokio_postgres::Client, SourceError> {
        let connect = config.connect(tokio_postgres::NoTls);
        let (client, connection) = tokio::time::timeout(self.idle, connect)
            .await
            .map_err(|_| SourceError::Unreachable {
                key: "reconcile.url".into(),
                url: self.shown.clone(),
                reason: format!("no connection within {:?}", self.idle),
            })?
            .map_err(|e| SourceError::Unreachable {
                key: "reconcile.url".into(),
                url: self.shown.clone(),
                reason: self.scrub(&error_chain(&e)),
            })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "reconcile: postgres connection ended");
            }
        });
        Ok(client)
    }

    /// Runs the query on PostgreSQL, calling `each` per row until it says
    /// stop (`false`) or the rows end; returns the rows read.
    async fn postgres_rows(
        &self,
        config: &tokio_postgres::Config,
        run: Option<&str>,
        mut each: impl FnMut(Row<'_>) -> Result<bool, SourceError>,
    ) -> Result<u64, ReconcileError> {
        let mut client = self.connect(config).await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(|e| {
                self.failed("reconcile.url", "cannot start a read-only transaction", &e)
            })?;
        let sql = bind_run(&self.query, "$1::text");
        let stmt = tx
            .prepare(&sql)
            .await
            .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        columns_ok(stmt.columns().len())?;
        let run = run.unwrap_or_default();
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            if self.uses_run { vec![&run] } else { vec![] };
        let portal = tx
            .bind(&stmt, &params)
            .await
            .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        let mut count = 0u64;
        loop {
            let rows = tx
                .query_portal_raw(&portal, BATCH)
                .await
                .map_err(|e| self.broke(&e))?;
            futures::pin_mut!(rows);
            let mut in_batch = 0;
            loop {
                let row = match tokio::time::timeout(self.idle, rows.next()).await {
                    Err(_) => {
                        return Err(ReconcileError::Broke {
                            source_desc: self.describe(),
                            reason: format!("no row for {:?}", self.idle),
                        })
                    }
                    Ok(None) => break,
                    Ok(Some(row)) => row.map_err(|e| self.broke(&e))?,
                };
                in_batch += 1;
                count += 1;
                let id: Cell<'_> = row.try_get(0).map_err(|e| {
                    self.failed(
                        "reconcile.query",
                        &format!("row {count}, the id column"),
                        &e,
                    )
                })?;
                let content = match row.len() {
                    2 => Some(row.try_get::<_, Cell<'_>>(1).map_err(|e| {
                        self.failed(
                            "reconcile.query",
                            &format!("row {count}, the content column"),
                            &e,
                        )
                    })?),
                    _ => None,
                };
                if !each(Row {
                    number: count,
                    id,
                    content,
                })? {
                    return Ok(count);
                }
            }
            if in_batch < BATCH {
                return Ok(count);
            }
        }
    }

    fn broke(&self, e: &tokio_postgres::Error) -> ReconcileError {
        ReconcileError::Broke {
            source_desc: self.describe(),
            reason: self.scrub(&error_chain(e)),
        }
    }

    /// Runs the query on SQLite (opened read-only) on this thread.
    fn sqlite_rows(
        &self,
        path: &std::path::Path,
        run: Option<&str>,
        mut each: impl FnMut(Row<'_>) -> Result<bool, SourceError>,
    ) -> Result<u64, SourceError> {
        use rusqlite::types::ValueRef;
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| SourceError::Unreachable {
            key: "reconcile.url".into(),
            url: self.shown.clone(),
            reason: error_chain(&e),
        })?;
        conn.busy_timeout(self.idle)
            .map_err(|e| self.failed("reconcile.url", "cannot set a busy timeout", &e))?;
        let sql = bind_run(&self.query, "?1");
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        let columns = stmt.column_count();
        columns_ok(columns)?;
        let mut rows = match self.uses_run {
            true => stmt.query([run.unwrap_or_default()]),
            false => stmt.query(rusqlite::params![]),
        }
        .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        let mut count = 0;
        while let Some(row) = rows
            .next()
            .map_err(|e| self.failed("reconcile.query", &format!("row {}", count + 1), &e))?
        {
            count += 1;
            let cell = |i: usize| -> Result<Cell<'_>, SourceError> {
                let v = row
                    .get_ref(i)
                    .map_err(|e| self.failed("reconcile.query", &format!("row {count}"), &e))?;
                Ok(match v {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(n) => Cell::Int(n),
                    ValueRef::Real(f) => Cell::Real(f),
                    ValueRef::Text(t) => {
                        Cell::Text(std::str::from_utf8(t).map_err(|_| SourceError::Unexpected {
                            key: "reconcile.query".into(),
                            what: format!(
                                "{}: row {count}: column {} is not UTF-8 text",
                                self.shown,
                                i + 1
                            ),
                        })?)
                    }
                    ValueRef::Blob(_) => Cell::Other("a blob"),
                })
            };
            let id = cell(0)?;
            let content = if columns == 2 { Some(cell(1)?) } else { None };
            if !each(Row {
                number: count,
                id,
                content,
            })? {
                break;
            }
        }
        Ok(count)
    }

    async fn stream_rows(
        &self,
        ledger: Ledger,
        run: Option<&str>,
    ) -> Result<(Ledger, u64), ReconcileError> {
        let mut ledger = ledger;
        let shown = self.shown.clone();
        let observe = move |ledger: &mut Ledger, row: Row<'_>| -> Result<bool, SourceError> {
            let (id, digest) = row.read(&shown)?;
            ledger.observe(OrderView {
                id: &id,
                user_id: None,
                items_digest: digest,
            });
            Ok(true)
        };
        match &self.db {
            Database::Postgres(config) => {
                let n = self
                    .postgres_rows(config, run, |row| observe(&mut ledger, row))
                    .await?;
                Ok((ledger, n))
            }
            Database::Sqlite(path) => {
                // rusqlite blocks: the rows are read on a blocking thread,
                // which owns the ledger until they end.
                let (this, path) = (self.clone(), path.clone());
                let run = run.map(str::to_string);
                let read = tokio::task::spawn_blocking(move || {
                    let n =
                        this.sqlite_rows(&path, run.as_deref(), |row| observe(&mut ledger, row));
                    n.map(|n| (ledger, n))
                });
                Ok(read
                    .await
                    .map_err(|e| ReconcileError::Internal(format!("sqlite reader task: {e}")))??)
            }
        }
    }

    async fn check_first(&self, run: Option<&str>) -> Result<String, SourceError> {
        let mut first = None;
        let mut columns = 0;
        let shown = self.shown.clone();
        let mut take = |row: Row<'_>| -> Result<bool, SourceError> {
            columns = if row.content.is_some() { 2 } else { 1 };
            let (id, digest) = row.read(&shown)?;
            first = Some((id.to_string(), digest));
            Ok(false)
        };
        match &self.db {
            Database::Postgres(config) => {
                self.postgres_rows(config, run, &mut take)
                    .await
                    .map_err(|e| match e {
                        ReconcileError::Source(e) => e,
                        other => SourceError::Unexpected {
                            key: "reconcile.query".into(),
                            what: self.scrub(&other.to_string()),
                        },
                    })?;
            }
            Database::Sqlite(path) => {
                // One row: cheap enough to read on this thread.
                self.sqlite_rows(path, run, &mut take)?;
            }
        }
        let for_run = match (self.uses_run, run) {
            (true, Some(r)) => format!(" for run {r:?}"),
            _ => String::new(),
        };
        Ok(match first {
            None => format!("the query ran: no rows yet{for_run}"),
            Some((id, digest)) => format!(
                "the query ran{for_run}: first row id {id:?}{}",
                match (columns, digest) {
                    (2, Some(d)) => format!(", content digest {d:016x}"),
                    _ => ", no content column (ids only)".into(),
                }
            ),
        })
    }
}

/// `text` with every secret replaced by `***`, and URL passwords masked.
fn scrub_with(secrets: &[String], text: &str) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "***");
    }
    crate::redact::passwords(&out)
}

fn columns_ok(n: usize) -> Result<(), SourceError> {
    if (1..=2).contains(&n) {
        return Ok(());
    }
    Err(SourceError::Unexpected {
        key: "reconcile.query".into(),
        what: format!("returns {n} columns; it must return the id, and optionally the content"),
    })
}

/// One row: the id and, with a second column, the content.
struct Row<'a> {
    number: u64,
    id: Cell<'a>,
    content: Option<Cell<'a>>,
}

impl Row<'_> {
    /// The id as text and the content's digest.
    fn read(&self, shown: &str) -> Result<(std::borrow::Cow<'_, str>, Option<u64>), SourceError> {
        let bad = |what: String| SourceError::Unexpected {
            key: "reconcile.query".into(),
            what: format!("{shown}: row {}: {what}", self.number),
        };
        let id = match &self.id {
            Cell::Text(t) if !t.is_empty() => std::borrow::Cow::Borrowed(*t),
            Cell::Text(_) => return Err(bad("the id is empty".into())),
            Cell::Int(n) => std::borrow::Cow::Owned(n.to_string()),
            Cell::Uuid(u) => std::borrow::Cow::Borrowed(u.as_str()),
            other => {
                return Err(bad(format!(
                    "the id is {} (expected text or a whole number)",
                    other.kind()
                )))
            }
        };
        let digest = match &self.content {
            None => None,
            Some(c) => Some(c.digest().map_err(bad)?),
        };
        Ok((id, digest))
    }
}

/// One value as read from either database, borrowed from the row.
#[derive(Debug)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Real(f64),
    Uuid(String),
    Json(serde_json::Value),
    /// A type that cannot be an id or content; the name says which.
    Other(&'static str),
}

impl Cell<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Text(_) => "text",
            Cell::Int(_) => "an integer",
            Cell::Real(_) => "a real number",
            Cell::Uuid(_) => "a uuid",
            Cell::Json(_) => "JSON",
            Cell::Other(what) => what,
        }
    }

    /// The digest the feeder records for the same content sent as JSON.
    fn digest(&self) -> Result<u64, String> {
        Ok(match self {
            Cell::Null => content_digest(&serde_json::Value::Null),
            Cell::Text(t) => text_digest(t),
            Cell::Int(n) => text_digest(&n.to_string()),
            Cell::Real(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => content_digest(&serde_json::Value::Number(n)),
                None => text_digest(&f.to_string()),
            },
            Cell::Uuid(u) => text_digest(u),
            Cell::Json(v) => content_digest(v),
            Cell::Other(what) => {
                return Err(format!(
                    "the content is {what}; cast it to text in the query"
                ))
            }
        })
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl<'a> FromSql<'a> for Cell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let int = |n: usize| -> Result<i64, BoxError> {
            let bytes: [u8; 8] = match n {
                2 => {
                    let b: [u8; 2] = raw.try_into()?;
                    i64::from(i16::from_be_bytes(b)).to_be_bytes()
                }
                4 => {
                    let b: [u8; 4] = raw.try_into()?;
                    i64::from(i32::from_be_bytes(b)).to_be_bytes()
                }
                _ => raw.try_into()?,
            };
            Ok(i64::from_be_bytes(bytes))
        };
        Ok(match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Cell::Text(std::str::from_utf8(raw)?)
            }
            Type::INT2 => Cell::Int(int(2)?),
            Type::INT4 => Cell::Int(int(4)?),
            Type::INT8 => Cell::Int(int(8)?),
            Type::UUID => {
                let b: [u8; 16] = raw.try_into()?;
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                Cell::Uuid(format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                ))
            }
            Type::JSON => Cell::Json(serde_json::from_slice(raw)?),
            // jsonb: a version byte (1), then the JSON text.
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => Cell::Json(serde_json::from_slice(text)?),
                _ => return Err("unknown jsonb version".into()),
            },
            _ => Cell::Other(
                "of a type that cannot be read here: cast it to text in the query (e.g. col::text)",
            ),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl StoredOrders for SqlOrders {
    fn kind(&self) -> &'static str {
        "sql"
    }

    fn describe(&self) -> String {
        let query: Vec<&str> = self.query.split_whitespace().collect();
        format!("sql {}: {}", self.shown, query.join(" "))
    }

    fn check<'a>(&'a self, run: Option<&'a str>) -> BoxFuture<'a, Result<String, SourceError>> {
        self.check_first(run).boxed()
    }

    fn stream<'a>(&'a self, ledger: Ledger, run: Option<&'a str>) -> Streamed<'a> {
        self.stream_rows(ledger, run).boxed()
    }

    fn run_key(&self) -> Option<&'static str> {
        self.uses_run.then_some("reconcile.query")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn run_is_a_parameter_and_only_outside_quotes() {
        let q = "SELECT id, body FROM orders WHERE id LIKE {run} || '-%' AND note <> '{x}'";
        assert_eq!(
            bind_run(q, "$1::text"),
            "SELECT id, body FROM orders WHERE id LIKE $1::text || '-%' AND note <> '{x}'"
        );
        assert_eq!(bind_run("SELECT id FROM t", "?1"), "SELECT id FROM t");
        assert!(placeholders("SELECT id FROM t WHERE id LIKE '{run}-%'")
            .unwrap_err()
            .contains("inside a quoted string"));
        assert!(placeholders("SELECT id FROM t WHERE r = {runid}")
            .unwrap_err()
            .contains("unknown placeholder {runid}"));
        assert_eq!(
            placeholders("SELECT '{', \"{run}x\" FROM t WHERE a = '{}'").map_err(|_| ()),
            Err(())
        );
        assert_eq!(
            placeholders("SELECT json_build_object('a', 1)").unwrap(),
            Vec::<usize>::new()
        );
    }

    fn listing(url: Option<&str>, env: Option<&str>, query: &str) -> SqlListing {
        SqlListing {
            url: url.map(str::to_string),
            url_env: env.map(str::to_string),
            query: query.into(),
        }
    }

    #[test]
    fn plans_are_validated_naming_the_key() {
        let key = |l: SqlListing| l.validate().unwrap_err().0;
        assert_eq!(key(listing(None, None, "SELECT 1")), "reconcile.url");
        assert_eq!(
            key(listing(Some("sqlite:a.db"), Some("DB"), "SELECT 1")),
            "reconcile.url"
        );
        assert_eq!(
            key(listing(Some("mysql://u:p@h/db"), None, "SELECT 1")),
            "reconcile.url"
        );
        assert_eq!(
            key(listing(Some("sqlite:"), None, "SELECT 1")),
            "reconcile.url"
        );
        assert_eq!(
            key(listing(None, Some("1BAD-NAME"), "SELECT 1")),
            "reconcile.url_env"
        );
        assert_eq!(
            key(listing(Some("sqlite:a.db"), None, "  ")),
            "reconcile.query"
        );
        assert_eq!(
            key(listing(
                Some("sqlite:a.db"),
                None,
                "SELECT id FROM t WHERE x = {seq}"
            )),
            "reconcile.query"
        );
        for ok in [
            listing(Some("sqlite:a.db"), None, "SELECT id FROM t"),
            listing(
                Some("postgres://u:pw@h:5432/db"),
                None,
                "SELECT id FROM t WHERE r = {run}",
            ),
            listing(None, Some("ORDERS_DB_URL"), "SELECT id FROM t"),
        ] {
            assert_eq!(ok.validate(), Ok(()), "{ok:?}");
        }
        let (_, m) = listing(Some("ftp://u:hunter2@h/"), None, "SELECT 1")
            .validate()
            .unwrap_err();
        assert!(!m.contains("hunter2"), "{m}");
    }

    #[test]
    fn the_password_is_never_shown() {
        let l = listing(
            Some("postgres://app:hunter%402@127.0.0.1:9/db"),
            None,
            "SELECT id FROM t",
        );
        assert!(!format!("{l:?}").contains("hunter"), "{l:?}");
        let s = SqlOrders::new(&l, &ReconcileOptions::default()).unwrap();
        assert!(!format!("{s:?}").contains("hunter"));
        assert!(!s.describe().contains("hunter"), "{}", s.describe());
        assert_eq!(
            s.scrub("auth failed for hunter@2 (hunter%402)"),
            "auth failed for *** (***)"
        );
        std::env::remove_var("HANDOVER_TEST_UNSET_DB_URL");
        let err = SqlOrders::new(
            &listing(None, Some("HANDOVER_TEST_UNSET_DB_URL"), "SELECT 1"),
            &ReconcileOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "reconcile.url_env: the environment variable HANDOVER_TEST_UNSET_DB_URL is not set"
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_without_the_password() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("postgres://app:s3cretpw@127.0.0.1:{port}/db");
        let s = SqlOrders::new(
            &listing(Some(&url), None, "SELECT id FROM t"),
            &ReconcileOptions::default(),
        )
        .unwrap();
        let err = s.check(None).await.unwrap_err();
        assert_eq!(err.key(), "reconcile.url");
        assert!(matches!(err, SourceError::Unreachable { .. }), "{err}");
        assert!(!err.to_string().contains("s3cretpw"), "{err}");
    }

    fn sqlite(rows: &[(&str, Option<&str>)]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE orders (id TEXT, body TEXT, n INTEGER, r REAL, b BLOB)")
            .unwrap();
        for (id, body) in rows {
            conn.execute(
                "INSERT INTO orders (id, body, n, r, b) VALUES (?1, ?2, 7, 1.5, x'00')",
                (id, body),
            )
            .unwrap();
        }
        let url = format!("sqlite:{}", path.display());
        (dir, url)
    }

    fn ledger_of(ids: &[&str]) -> Ledger {
        super::super::acked_with(ids, "v1")
    }

    #[tokio::test]
    async fn sqlite_rows_are_streamed_with_their_content() {
        let (_dir, url) = sqlite(&[("r-1", Some("v1")), ("r-2", Some("changed")), ("r-9", None)]);
        let s = SqlOrders::new(
            &listing(
                Some(&url),
                None,
                "SELECT id, body FROM orders WHERE id LIKE {run} || '-%' ORDER BY id",
            ),
            &ReconcileOptions::default(),
        )
        .unwrap();
        assert_eq!(s.run_key(), Some("reconcile.query"));
        let said = s.check(Some("r")).await.unwrap();
        assert!(said.contains("first row id \"r-1\""), "{said}");
        assert!(s
            .check(Some("other"))
            .await
            .unwrap()
            .contains("no rows yet"));
        let (ledger, n) = s
            .stream(ledger_of(&["r-1", "r-2", "r-3"]), Some("r"))
            .await
            .unwrap();
        assert_eq!(n, 3);
        let r = ledger.finish(10);
        assert_eq!(
            (r.ok, r.lost, r.mismatched, r.unexpected),
            (1, 1, 1, 1),
            "{r:#?}"
        );
        assert_eq!(r.ids.mismatched, ["r-2"]);
        assert_eq!(r.ids.unexpected, ["r-9"]);
        // An integer id and an integer content are read as their decimal text.
        let s = SqlOrders::new(
            &listing(Some(&url), None, "SELECT n, n FROM orders LIMIT 1"),
            &ReconcileOptions::default(),
        )
        .unwrap();
        let said = s.check(None).await.unwrap();
        assert!(
            said.contains(&format!(
                "first row id \"7\", content digest {:016x}",
                text_digest("7")
            )),
            "{said}"
        );
    }

    #[tokio::test]
    async fn sqlite_failures_name_the_key() {
        let (dir, url) = sqlite(&[("a", None)]);
        let check = |url: String, query: &'static str| async move {
            let s = SqlOrders::new(
                &listing(Some(&url), None, query),
                &ReconcileOptions::default(),
            )
            .unwrap();
            s.check(None).await.unwrap_err()
        };
        let err = check(url.clone(), "SELECT id FROM no_such_table").await;
        assert_eq!(err.key(), "reconcile.query");
        assert!(err.to_string().contains("no such table"), "{err}");
        let err = check(url.clone(), "SELECT id, body, n FROM orders").await;
        assert!(err.to_string().contains("returns 3 columns"), "{err}");
        let err = check(url.clone(), "SELECT r FROM orders").await;
        assert!(err.to_string().contains("the id is a real number"), "{err}");
        let err = check(url.clone(), "SELECT body FROM orders").await;
        assert!(err.to_string().contains("the id is NULL"), "{err}");
        let err = check(url.clone(), "SELECT id, b FROM orders").await;
        assert!(err.to_string().contains("the content is a blob"), "{err}");
        let missing = format!("sqlite:{}", dir.path().join("nope.db").display());
        let err = check(missing, "SELECT id FROM orders").await;
        assert_eq!(err.key(), "reconcile.url");
        // Read-only: a write through the query is refused.
        let err = check(url, "DELETE FROM orders RETURNING id").await;
        assert!(err.to_string().contains("readonly"), "{err}");
    }
}
