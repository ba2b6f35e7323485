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
//!   that leaves this file is scrubbed of it.
//!
//! - [`query`]: the plan's URL and query, `{run}` bound as a parameter.
//! - [`postgres`], [`sqlite`]: the rows of each database, streamed.
//! - [`row`]: a row's id and content digest, from either database.

#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod row;
mod sqlite;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{SqlListing, StoredOrders, Streamed};
use crate::reconcile::ledger::{Ledger, OrderView};
use crate::reconcile::{ReconcileError, ReconcileOptions};
use crate::sources::{error_chain, SourceError};
use query::{check_url, placeholders};
use row::Row;

/// Where the query runs.
#[derive(Clone)]
enum Database {
    #[cfg(feature = "postgres")]
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
        // The password, raw and percent-decoded: what no message may show.
        let mut secrets = Vec::new();
        if let Some(p) = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.password().map(str::to_string))
        {
            let decoded = url::form_urlencoded::parse(format!("p={p}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned());
            secrets.push(p);
            secrets.extend(decoded.filter(|d| !d.is_empty()));
        }
        let db = match url.strip_prefix("sqlite:") {
            Some(path) => Database::Sqlite(PathBuf::from(path.strip_prefix("//").unwrap_or(path))),
            #[cfg(feature = "postgres")]
            None => {
                let mut config = url.parse::<tokio_postgres::Config>().map_err(|e| {
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
            // A build without PostgreSQL (scripts/demo.sh builds SQLite only).
            #[cfg(not(feature = "postgres"))]
            None => {
                return Err(key_err(
                    key,
                    format!(
                        "{}: this migrator was built without the \"postgres\" feature, so \
                         kind = \"sql\" reads only sqlite:PATH; build it with its default \
                         features (cargo build --release --bin migrator)",
                        crate::redact::passwords(&url)
                    ),
                ))
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
            #[cfg(feature = "postgres")]
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
            #[cfg(feature = "postgres")]
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
pub(super) mod tests {
    use super::*;
    use handover_contract::order::text_digest;

    pub(crate) fn listing(url: Option<&str>, env: Option<&str>, query: &str) -> SqlListing {
        SqlListing {
            url: url.map(str::to_string),
            url_env: env.map(str::to_string),
            query: query.into(),
        }
    }

    #[cfg(feature = "postgres")]
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

    /// The demo build: the plan is refused at load (exit 2), by key.
    #[cfg(not(feature = "postgres"))]
    #[test]
    fn a_build_without_postgres_refuses_its_url_by_key() {
        let l = listing(
            Some("postgres://app:hunter%402@127.0.0.1:9/db"),
            None,
            "SELECT id FROM t",
        );
        let err = SqlOrders::new(&l, &ReconcileOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("reconcile.url: "), "{err}");
        assert!(err.contains("\"postgres\" feature"), "{err}");
        assert!(!err.contains("hunter"), "{err}");
    }

    #[cfg(feature = "postgres")]
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
