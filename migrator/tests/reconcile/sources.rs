//! The reconcile sources other than the example app, against real stores:
//! an HTTP listing served by an axum server on loopback (JSON pages and
//! NDJSON, paginated), a SQLite file, a PostgreSQL table (a throwaway
//! cluster from `scripts/pg.sh`, or `HANDOVER_TEST_PG_URL`) and a shell
//! command. For every source the same story: an acknowledged id missing
//! from storage is `lost` with its id, a stored id never sent is
//! `unexpected`, a changed content is `mismatched`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use futures::FutureExt;
use handover_contract::order::content_digest;
use handover_contract::{AckRecord, Outcome};
use migrator::reconcile::{reconcile_source, ReconcileError, ReconcileOptions, ReconcileReport};

use super::{migrator, quick, text};
use crate::common::pg::Pg;
use migrator::sources::converge::{ConvergeSource, Positions};
use migrator::sources::reconcile::{
    from_plan, CommandListing, HttpListing, ListFormat, ReconcilePlan, SqlListing, StoredOrders,
};
use migrator::sources::SourceError;
use serde_json::{json, Value};

const RUN: &str = "t1";

fn id(n: u32) -> String {
    format!("{RUN}-{n:010}")
}

/// What the feeder sent for order `n`: the value at its content pointer.
fn sent(n: u32) -> Value {
    json!({"note": format!("v{n}"), "qty": n})
}

/// The ack log: orders 1..=4 acknowledged with the digest of what was sent.
fn acks(dir: &Path) -> PathBuf {
    let path = dir.join("acks.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for n in 1..=4 {
        let ack = AckRecord {
            id: id(n),
            due_ns: 1,
            done_ns: 2,
            outcome: Outcome::Ok,
            status: Some(201),
            instance: Some("a".into()),
            latency_us: 1000,
            user_id: None,
            items_digest: Some(format!("{:016x}", content_digest(&sent(n)))),
        };
        writeln!(f, "{}", serde_json::to_string(&ack).unwrap()).unwrap();
    }
    path
}

/// What the store holds: 1 and 2 as sent, 3 lost, 4 altered, 9 never sent.
fn stored() -> Vec<(String, Value)> {
    let mut altered = sent(4);
    altered["note"] = json!("altered");
    vec![
        (id(1), sent(1)),
        (id(2), sent(2)),
        (id(4), altered),
        (id(9), sent(9)),
    ]
}

fn b() -> url::Url {
    url::Url::parse("http://127.0.0.1:9/").unwrap()
}

fn source(plan: &ReconcilePlan) -> Box<dyn StoredOrders> {
    from_plan(plan, &b(), &quick()).unwrap().unwrap()
}

/// The same verdict for every source.
fn assert_story(r: &ReconcileReport) {
    assert_eq!(
        (r.ok, r.lost, r.mismatched, r.unexpected),
        (2, 1, 1, 1),
        "{r:#?}"
    );
    assert_eq!(r.ids.lost, [id(3)]);
    assert_eq!(r.ids.mismatched, [id(4)]);
    assert_eq!(r.ids.unexpected, [id(9)]);
    assert_eq!(r.content_unchecked, 0, "{r:#?}");
    assert!(!r.passed());
}

async fn reconcile(
    dir: &Path,
    source: &dyn StoredOrders,
) -> Result<ReconcileReport, ReconcileError> {
    reconcile_source(&[acks(dir)], source, None, &quick()).await
}

// --- HTTP ---------------------------------------------------------------

/// A listing served in pages of `per_page`.
struct Listing {
    items: Vec<Value>,
    per_page: usize,
    /// Page whose "next" points back to the first (a loop), if any.
    loop_at: Option<usize>,
    /// Status of every reply (200 unless a test breaks it).
    status: AtomicU64,
    pages_served: AtomicU64,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<usize>,
}

impl Listing {
    fn page(&self, q: &PageQuery) -> (usize, &[Value], Option<String>) {
        let page = q.page.unwrap_or(0);
        self.pages_served.fetch_add(1, Ordering::SeqCst);
        let from = (page * self.per_page).min(self.items.len());
        let to = (from + self.per_page).min(self.items.len());
        let next = if self.loop_at == Some(page) {
            Some("?page=0".to_string())
        } else {
            (to < self.items.len()).then(|| format!("?page={}", page + 1))
        };
        (page, &self.items[from..to], next)
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status.load(Ordering::SeqCst) as u16).unwrap()
    }
}

/// JSON pages: `{"data": [...], "links": {"next": "?page=N"}}` (relative).
async fn json_pages(State(l): State<Arc<Listing>>, Query(q): Query<PageQuery>) -> Response {
    let (_, items, next) = l.page(&q);
    (
        l.status(),
        axum::Json(json!({"data": items, "links": {"next": next}})),
    )
        .into_response()
}

/// NDJSON pages, the next one in a `Link` header, lines cut across chunks.
async fn ndjson_pages(State(l): State<Arc<Listing>>, Query(q): Query<PageQuery>) -> Response {
    let (_, items, next) = l.page(&q);
    let mut body = Vec::new();
    for item in items {
        serde_json::to_writer(&mut body, item).unwrap();
        body.extend_from_slice(b"\r\n");
    }
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .chunks(7)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let mut resp = Response::builder()
        .status(l.status())
        .header(header::CONTENT_TYPE, "application/x-ndjson");
    if let Some(next) = next {
        resp = resp.header(header::LINK, format!("</ndjson{next}>; rel=\"next\""));
    }
    resp.body(axum::body::Body::from_stream(futures::stream::iter(chunks)))
        .unwrap()
}

async fn serve_listing(listing: Listing) -> (url::Url, Arc<Listing>) {
    let listing = Arc::new(listing);
    let app = Router::new()
        .route("/items", get(json_pages))
        .route("/ndjson", get(ndjson_pages))
        .with_state(listing.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        url::Url::parse(&format!("http://{addr}/")).unwrap(),
        listing,
    )
}

fn listing_of(items: Vec<Value>, per_page: usize) -> Listing {
    Listing {
        items,
        per_page,
        loop_at: None,
        status: AtomicU64::new(200),
        pages_served: AtomicU64::new(0),
    }
}

fn stored_items() -> Vec<Value> {
    stored()
        .into_iter()
        .map(|(key, body)| json!({"key": key, "body": body}))
        .collect()
}

fn http_plan(base: &url::Url, path: &str, format: ListFormat) -> ReconcilePlan {
    ReconcilePlan::Http(HttpListing {
        url: base.join(path).unwrap(),
        format,
        items_pointer: (format == ListFormat::Json).then(|| "/data".to_string()),
        id_pointer: "/key".into(),
        digest_pointer: Some("/body".into()),
        next_pointer: (format == ListFormat::Json).then(|| "/links/next".to_string()),
    })
}

#[tokio::test]
async fn an_http_listing_is_read_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let (base, listing) = serve_listing(listing_of(stored_items(), 1)).await;
    for (path, format) in [("items", ListFormat::Json), ("ndjson", ListFormat::Ndjson)] {
        listing.pages_served.store(0, Ordering::SeqCst);
        let s = source(&http_plan(&base, path, format));
        let r = reconcile(dir.path(), s.as_ref()).await.unwrap();
        assert_story(&r);
        assert_eq!(r.stored_total, 4);
        assert_eq!(
            listing.pages_served.load(Ordering::SeqCst),
            4,
            "{path}: one page per item"
        );
        assert!(
            r.source.starts_with(&format!("http listing {base}{path}")),
            "{}",
            r.source
        );
        assert!(r.waited_on.is_empty());
        let said = s.check(None).await.unwrap();
        assert!(said.contains(&format!("look like \"{}\"", id(1))), "{said}");
        assert!(said.contains("next page"), "{said}");
    }
}

#[tokio::test]
async fn a_listing_that_loops_or_breaks_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut looping = listing_of(stored_items(), 2);
    looping.loop_at = Some(1);
    let (base, _l) = serve_listing(looping).await;
    let err = reconcile(
        dir.path(),
        source(&http_plan(&base, "items", ListFormat::Json)).as_ref(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("reconcile.next_pointer:") && text.contains("the listing loops"),
        "{text}"
    );
    let err = reconcile(
        dir.path(),
        source(&http_plan(&base, "ndjson", ListFormat::Ndjson)).as_ref(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().starts_with("reconcile.url:") && err.to_string().contains("loops"),
        "{err}"
    );

    let (base, listing) = serve_listing(listing_of(stored_items(), 2)).await;
    listing.status.store(500, Ordering::SeqCst);
    let s = source(&http_plan(&base, "items", ListFormat::Json));
    let err = s.check(None).await.unwrap_err();
    assert_eq!(err.key(), "reconcile.url");
    assert!(err.to_string().contains("answered HTTP 500"), "{err}");

    // A pointer that resolves to nothing on the first item fails the check.
    listing.status.store(200, Ordering::SeqCst);
    let mut plan = http_plan(&base, "items", ListFormat::Json);
    if let ReconcilePlan::Http(l) = &mut plan {
        l.id_pointer = "/id".into();
    }
    let err = source(&plan).check(None).await.unwrap_err();
    assert!(matches!(err, SourceError::Missing { .. }), "{err}");
    assert_eq!(err.key(), "reconcile.id_pointer");
    assert!(err.to_string().contains("item 1"), "{err}");

    // Unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let s = source(&http_plan(&nowhere, "items", ListFormat::Json));
    let err = s.check(None).await.unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err}");
    let err = reconcile(dir.path(), s.as_ref()).await.unwrap_err();
    assert!(err.is_usage(), "{err}");
}

/// A converge source of the test's own: lags twice, then has applied the head.
struct Lagging(AtomicU64);

impl ConvergeSource for Lagging {
    fn describe(&self) -> String {
        "test positions".into()
    }
    fn read(&self) -> BoxFuture<'_, Result<Positions, SourceError>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok(Positions {
                applied: 10.min(7 + n),
                head: 9,
                ready: true,
            })
        }
        .boxed()
    }
}

#[tokio::test]
async fn the_converge_source_is_waited_on_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _l) = serve_listing(listing_of(stored_items(), 3)).await;
    let s = source(&http_plan(&base, "items", ListFormat::Json));
    let converge = Lagging(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let opts = ReconcileOptions {
        progress: Some(Arc::new(move |p: &migrator::reconcile::Progress| {
            sink.lock().unwrap().push(p.clone())
        })),
        ..quick()
    };
    let r = reconcile_source(&[acks(dir.path())], s.as_ref(), Some(&converge), &opts)
        .await
        .unwrap();
    assert_story(&r);
    assert_eq!(
        (r.applied, r.head, r.waited_on.as_str()),
        (9, 9, "test positions")
    );
    assert_eq!(converge.0.load(Ordering::SeqCst), 3);
    assert!(seen
        .lock()
        .unwrap()
        .contains(&migrator::reconcile::Progress::Applying {
            applied: 7,
            head: 9
        }));
}

// --- SQL ----------------------------------------------------------------

fn sql_plan(url: &str, query: &str) -> ReconcilePlan {
    ReconcilePlan::Sql(SqlListing {
        url: Some(url.to_string()),
        url_env: None,
        query: query.into(),
    })
}

fn sqlite_file(dir: &Path) -> String {
    let path = dir.join("service.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE orders (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    )
    .unwrap();
    for (key, body) in stored() {
        conn.execute(
            "INSERT INTO orders VALUES (?1, ?2)",
            (key, body.to_string()),
        )
        .unwrap();
    }
    // Another run's row: the query's {run} filter leaves it out.
    conn.execute("INSERT INTO orders VALUES ('t0-0000000001', 'x')", ())
        .unwrap();
    format!("sqlite:{}", path.display())
}

#[tokio::test]
async fn a_sqlite_table_is_read_for_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_file(dir.path());
    let s = source(&sql_plan(
        &url,
        "SELECT id, body FROM orders WHERE id LIKE {run} || '-%' ORDER BY id",
    ));
    let r = reconcile(dir.path(), s.as_ref()).await.unwrap();
    assert_story(&r);
    assert_eq!(r.stored_total, 4);
    let said = s.check(Some(RUN)).await.unwrap();
    assert!(
        said.contains(&format!("first row id \"{}\"", id(1))),
        "{said}"
    );

    let bad = source(&sql_plan(&url, "SELECT id FROM orderz"));
    let err = reconcile(dir.path(), bad.as_ref()).await.unwrap_err();
    assert!(err.is_usage());
    assert!(
        err.to_string().starts_with("reconcile.query:") && err.to_string().contains("orderz"),
        "{err}"
    );
}

#[tokio::test]
async fn a_postgres_table_is_read_through_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Pg::start();
    let table = format!("orders_{}", std::process::id());
    let (client, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id text PRIMARY KEY, body jsonb NOT NULL, note text, n int8)"
        ))
        .await
        .unwrap();
    for (key, body) in stored() {
        let note = body["note"].as_str().unwrap().to_string();
        client
            .execute(
                &format!("INSERT INTO {table} VALUES ($1, $2::text::jsonb, $3, 1)"),
                &[&key, &body.to_string(), &note],
            )
            .await
            .unwrap();
    }
    client
        .execute(
            &format!("INSERT INTO {table} VALUES ('t0-1', '{{}}', 'x', 2)"),
            &[],
        )
        .await
        .unwrap();

    // jsonb content, digested as the JSON value the feeder sent.
    let query = format!("SELECT id, body FROM {table} WHERE id LIKE {{run}} || '-%' ORDER BY id");
    let s = source(&sql_plan(&pg.url, &query));
    let r = reconcile(dir.path(), s.as_ref()).await.unwrap();
    assert_story(&r);
    let password = url::Url::parse(&pg.url)
        .unwrap()
        .password()
        .map(str::to_string);
    assert!(
        !r.source.contains(password.as_deref().unwrap_or("\u{0}")),
        "{}",
        r.source
    );
    assert!(
        r.source.starts_with("sql postgres://handover:***@") || password.is_none(),
        "{}",
        r.source
    );
    let said = s.check(Some(RUN)).await.unwrap();
    assert!(
        said.contains(&format!("first row id \"{}\"", id(1))),
        "{said}"
    );

    // Ids only (no content column), an integer id, a failing query.
    let ids = source(&sql_plan(
        &pg.url,
        &format!("SELECT id FROM {table} WHERE id LIKE 't1-%'"),
    ));
    let r = reconcile(dir.path(), ids.as_ref()).await.unwrap();
    assert_eq!(
        (
            r.ok,
            r.lost,
            r.unexpected,
            r.mismatched,
            r.content_unchecked
        ),
        (3, 1, 1, 0, 3)
    );
    let ints = source(&sql_plan(
        &pg.url,
        &format!("SELECT n FROM {table} LIMIT 1"),
    ));
    assert!(ints
        .check(None)
        .await
        .unwrap()
        .contains("first row id \"1\""));
    let bad = source(&sql_plan(&pg.url, &format!("SELECT id, nope FROM {table}")));
    let err = bad.check(None).await.unwrap_err();
    assert_eq!(err.key(), "reconcile.query");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = reconcile(dir.path(), bad.as_ref()).await.unwrap_err();
    assert!(err.is_usage(), "{err}");

    // A wrong password: refused, and the password is not in the message.
    let mut wrong = url::Url::parse(&pg.url).unwrap();
    wrong.set_password(Some("Wr0ngPassw0rd")).unwrap();
    let err = source(&sql_plan(wrong.as_str(), "SELECT 1"))
        .check(None)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("Wr0ngPassw0rd"), "{err}");
    if let Some(p) = &password {
        assert!(!err.to_string().contains(p.as_str()), "{err}");
    }
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

// --- command ------------------------------------------------------------

#[tokio::test]
async fn a_command_lists_ids_and_contents() {
    let dir = tempfile::tempdir().unwrap();
    let listing = dir.path().join("listing.tsv");
    let mut text = String::new();
    for (key, body) in stored() {
        text.push_str(&format!("{key}\t{body}\n"));
    }
    std::fs::write(&listing, text).unwrap();
    let plan = ReconcilePlan::Command(CommandListing {
        command: format!("grep -- ^{{run}}- {}", listing.display()),
    });
    let s = source(&plan);
    let r = reconcile(dir.path(), s.as_ref()).await.unwrap();
    assert_story(&r);
    let failing = source(&ReconcilePlan::Command(CommandListing {
        command: format!(
            "cat {}; echo 'lost the connection' >&2; exit 1",
            listing.display()
        ),
    }));
    let err = reconcile(dir.path(), failing.as_ref()).await.unwrap_err();
    assert!(err.to_string().contains("lost the connection"), "{err}");
}

// --- the binary ---------------------------------------------------------

fn plan_file(dir: &Path, reconcile: &str) -> PathBuf {
    let path = dir.join("plan.toml");
    let text = format!(
        r#"
[a]
url = "http://127.0.0.1:9/"
address = "a"
stop = "true"
[b]
url = "http://127.0.0.1:8/"
address = "b"
start = "true"
[switch]
kind = "command"
flip = "true"
read = "echo a"
[feeder]
target = "http://127.0.0.1:7/"
[converge]
kind = "wait"
for = "1s"
[reconcile]
{reconcile}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `migrator reconcile --acks ACKS --plan PLAN [more]`: exit code, stdout, stderr.
async fn reconcile_with_plan(
    acks: &Path,
    plan: &Path,
    more: &[&str],
) -> (Option<i32>, String, String) {
    let mut args = vec![
        "reconcile",
        "--acks",
        acks.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let out = migrator(&args).await;
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn the_binary_reconciles_with_a_plan_and_names_the_lost_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_file(dir.path());
    let query = "SELECT id, body FROM orders WHERE id LIKE {run} || '-%'";
    let plan = plan_file(
        dir.path(),
        &format!("kind = \"sql\"\nurl = {url:?}\nquery = {query:?}"),
    );
    let acks = acks(dir.path());
    let report = dir.path().join("report.json");
    let (code, stdout, stderr) =
        reconcile_with_plan(&acks, &plan, &["--report", report.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("lost ids: {}", id(3))), "{stdout}");
    assert!(stdout.contains(&format!("read sql {url}")), "{stdout}");
    let json: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["reconcile"]["lost"], 1);
    assert!(json["reconcile"]["source"]
        .as_str()
        .unwrap()
        .starts_with("sql sqlite:"));

    // `none`: with nothing to reconcile against, this command has nothing to do.
    let none = plan_file(dir.path(), "kind = \"none\"");
    let (code, _, stderr) = reconcile_with_plan(&acks, &none, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("nothing to reconcile"), "{stderr}");

    // A pointer that is not one: exit 2 naming the key.
    let bad = plan_file(
        dir.path(),
        "kind = \"http\"\nurl = \"http://127.0.0.1:9/x\"\nid_pointer = \"id\"",
    );
    let (code, _, stderr) = reconcile_with_plan(&acks, &bad, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("reconcile.id_pointer"), "{stderr}");
}
