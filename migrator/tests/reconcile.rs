//! `reconcile` against a real HTTP server on loopback that serves `/health`
//! and NDJSON `/orders`, with every category of order present.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use handover_contract::order::line_items_digest;
use handover_contract::{AckRecord, Health, LineItem, Order, Outcome};
use migrator::reconcile::{reconcile, reconcile_files, Progress, ReconcileError, ReconcileOptions};

mod common;
/// The other reconcile sources: HTTP listings, SQLite, PostgreSQL, commands.
#[path = "reconcile/sources.rs"]
mod sources;

/// What the fake B serves.
struct Fake {
    /// `/orders` body, sent in small uneven chunks so lines straddle chunks.
    ndjson: Vec<u8>,
    /// `/health` reports `applied = head - 5` for this many polls, then catches up.
    lagging_polls: u64,
    polls: AtomicU64,
    /// Serve a JSON array instead of NDJSON (an app that ignores `Accept`).
    json_array: bool,
    accept_seen: Mutex<Option<String>>,
}

async fn health(State(fake): State<Arc<Fake>>) -> Response {
    let n = fake.polls.fetch_add(1, Ordering::SeqCst);
    let head = 100;
    let applied = if n < fake.lagging_polls {
        head - 5
    } else {
        head
    };
    let doc = Health {
        healthy: applied == head,
        ..Health::idle("b", applied, head)
    };
    let status = if applied == head {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(doc)).into_response()
}

async fn orders(State(fake): State<Arc<Fake>>, headers: axum::http::HeaderMap) -> Response {
    *fake.accept_seen.lock().unwrap() = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if fake.json_array {
        return (StatusCode::OK, "[{\"id\":\"x\"}]").into_response();
    }
    let chunks: Vec<Result<Bytes, std::io::Error>> = fake
        .ndjson
        .chunks(37)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap()
}

/// Serves `fake` on an ephemeral loopback port; the server task ends with the runtime.
async fn serve(fake: Fake) -> (url::Url, Arc<Fake>) {
    let fake = Arc::new(fake);
    let app = Router::new()
        .route("/health", get(health))
        .route("/orders", get(orders))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url::Url::parse(&format!("http://{addr}/")).unwrap(), fake)
}

fn items(n: u32) -> Vec<LineItem> {
    vec![
        LineItem {
            product: format!("widget-{n}"),
            quantity: n,
        },
        LineItem {
            product: "bolt".into(),
            quantity: 2,
        },
    ]
}

fn ack(id: &str, outcome: Outcome) -> AckRecord {
    AckRecord {
        id: id.into(),
        due_ns: 1_700_000_000_000_000_000,
        done_ns: 1_700_000_000_001_000_000,
        outcome,
        status: Some(match outcome {
            Outcome::Ok => 201,
            Outcome::Rejected => 422,
            Outcome::Indeterminate => 503,
        }),
        instance: Some("a".into()),
        latency_us: 1000,
        user_id: Some("user-1".into()),
        items_digest: Some(line_items_digest(&items(1))),
    }
}

fn order(id: &str) -> Order {
    Order {
        id: id.into(),
        user_id: "user-1".into(),
        line_items: items(1),
        placed_at: "2024-01-01T00:00:00Z".into(),
        placed_by: "b".into(),
    }
}

fn write_acks(dir: &Path, name: &str, acks: &[AckRecord]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    for a in acks {
        writeln!(f, "{}", serde_json::to_string(a).unwrap()).unwrap();
    }
    path
}

fn ndjson(orders: &[Order]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in orders {
        serde_json::to_writer(&mut out, o).unwrap();
        out.push(b'\n');
    }
    out
}

fn fake(orders: &[Order]) -> Fake {
    Fake {
        ndjson: ndjson(orders),
        lagging_polls: 0,
        polls: AtomicU64::new(0),
        json_array: false,
        accept_seen: Mutex::new(None),
    }
}

fn quick() -> ReconcileOptions {
    ReconcileOptions {
        apply_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
        request_timeout: Duration::from_secs(10),
        ..ReconcileOptions::default()
    }
}

#[tokio::test]
async fn every_category_is_found_over_http() {
    use Outcome::*;
    let dir = tempfile::tempdir().unwrap();
    let acks = write_acks(
        dir.path(),
        "acks.jsonl",
        &[
            ack("ok-1", Ok),
            ack("ok-2", Ok),
            ack("lost-1", Ok),
            ack("recovered-1", Indeterminate),
            ack("indet-absent-1", Indeterminate),
            ack("rejected-absent-1", Rejected),
            ack("rejected-present-1", Rejected),
            ack("dup-b-1", Ok),
            ack("mismatch-user-1", Ok),
            ack("mismatch-items-1", Ok),
        ],
    );
    let mut wrong_user = order("mismatch-user-1");
    wrong_user.user_id = "user-2".into();
    let mut wrong_items = order("mismatch-items-1");
    wrong_items.line_items = items(3);
    let stored = [
        order("ok-1"),
        order("ok-2"),
        order("recovered-1"),
        order("rejected-present-1"),
        order("dup-b-1"),
        order("dup-b-1"),
        wrong_user,
        wrong_items,
        // In a run of the ack log, never sent: unexpected.
        order("ok-999"),
        // Another run's or client's order: counted, not judged.
        order("earlier-run-1"),
    ];
    let mut f = fake(&stored);
    f.lagging_polls = 3;
    let (url, fake) = serve(f).await;

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let opts = ReconcileOptions {
        progress: Some(Arc::new(move |p: &Progress| {
            sink.lock().unwrap().push(p.clone())
        })),
        ..quick()
    };
    let r = reconcile(&acks, &url, &opts).await.unwrap();

    assert_eq!(r.acked_total, 10);
    assert_eq!(r.stored_total, 10);
    assert_eq!(r.foreign, 1);
    assert_eq!(r.ok, 3, "{r:#?}");
    assert_eq!(r.lost, 1);
    assert_eq!(r.recovered, 1);
    assert_eq!(r.indeterminate_absent, 1);
    assert_eq!(r.rejected_absent, 1);
    assert_eq!(r.rejected_present, 1);
    assert_eq!(r.never_sent, 1);
    assert_eq!(r.unexpected, 2);
    assert_eq!(r.duplicated, 1);
    assert_eq!(r.mismatched, 2);
    assert_eq!(r.ids.lost, ["lost-1"]);
    assert_eq!(r.ids.unexpected, ["rejected-present-1", "ok-999"]);
    assert_eq!(r.ids.duplicated, ["dup-b-1"]);
    assert_eq!(r.ids.mismatched, ["mismatch-user-1", "mismatch-items-1"]);
    assert_eq!((r.applied, r.head), (100, 100));
    assert!(!r.passed());

    // It waited for B to apply the head before reading the orders.
    assert!(fake.polls.load(Ordering::SeqCst) >= 4);
    let seen = seen.lock().unwrap();
    assert!(seen.contains(&Progress::Applying {
        applied: 95,
        head: 100
    }));
    assert!(seen.contains(&Progress::Fetched { orders: 10 }));
    assert_eq!(
        fake.accept_seen.lock().unwrap().as_deref(),
        Some("application/x-ndjson")
    );
}

#[tokio::test]
async fn several_ack_logs_and_a_clean_set_pass() {
    let dir = tempfile::tempdir().unwrap();
    let first: Vec<_> = (0..300)
        .map(|i| ack(&format!("f1-{i}"), Outcome::Ok))
        .collect();
    let second: Vec<_> = (0..200)
        .map(|i| ack(&format!("f2-{i}"), Outcome::Ok))
        .collect();
    let a = write_acks(dir.path(), "a.jsonl", &first);
    let b = write_acks(dir.path(), "b.jsonl", &second);
    let stored: Vec<_> = first.iter().chain(&second).map(|a| order(&a.id)).collect();
    let (url, _fake) = serve(fake(&stored)).await;
    let r = reconcile_files(&[a, b], &url, &quick()).await.unwrap();
    assert_eq!(r.ok, 500);
    assert_eq!(r.stored_total, 500);
    assert!(r.passed(), "{r:#?}");
    assert_eq!(r.ack_files.len(), 2);
}

#[tokio::test]
async fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let acks = write_acks(dir.path(), "acks.jsonl", &[ack("x", Outcome::Ok)]);
    let (url, _fake) = serve(fake(&[order("x")])).await;

    let missing = dir.path().join("nope.jsonl");
    let err = reconcile(&missing, &url, &quick()).await.unwrap_err();
    assert!(matches!(err, ReconcileError::AckLog(_)), "{err}");
    assert!(err.is_usage());
    assert!(err.to_string().contains("nope.jsonl"), "{err}");

    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, "{\"id\":\"x\",\"outcome\":\"ok\"}\nnot json\n").unwrap();
    let err = reconcile(&garbage, &url, &quick()).await.unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");

    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let err = reconcile(&acks, &nowhere, &quick()).await.unwrap_err();
    assert!(matches!(err, ReconcileError::Unreachable { .. }), "{err}");
    assert!(err.is_usage());

    let ftp = url::Url::parse("ftp://127.0.0.1/").unwrap();
    let err = reconcile(&acks, &ftp, &quick()).await.unwrap_err();
    assert!(matches!(err, ReconcileError::BadUrl { .. }), "{err}");
}

#[tokio::test]
async fn an_app_that_never_catches_up_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let acks = write_acks(dir.path(), "acks.jsonl", &[ack("x", Outcome::Ok)]);
    let mut f = fake(&[order("x")]);
    f.lagging_polls = u64::MAX;
    let (url, _fake) = serve(f).await;
    let opts = ReconcileOptions {
        apply_timeout: Duration::from_millis(600),
        ..quick()
    };
    let err = reconcile(&acks, &url, &opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            ReconcileError::ApplyTimeout {
                applied: 95,
                head: 100,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_usage());
}

#[tokio::test]
async fn a_json_array_instead_of_ndjson_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let acks = write_acks(dir.path(), "acks.jsonl", &[ack("x", Outcome::Ok)]);
    let mut f = fake(&[]);
    f.json_array = true;
    let (url, _fake) = serve(f).await;
    let err = reconcile(&acks, &url, &quick()).await.unwrap_err();
    assert!(matches!(err, ReconcileError::BadResponse { .. }), "{err}");
    assert!(err.to_string().contains("NDJSON"), "{err}");
}

/// Runs `migrator reconcile …`; killed if the test is dropped or times out.
async fn migrator(args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_migrator"))
        .args(args)
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn migrator");
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("migrator reconcile finished in time")
        .expect("migrator output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_binary_passes_a_clean_set_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let acks: Vec<_> = (0..50)
        .map(|i| ack(&format!("c-{i}"), Outcome::Ok))
        .collect();
    let path = write_acks(dir.path(), "acks.jsonl", &acks);
    let stored: Vec<_> = acks.iter().map(|a| order(&a.id)).collect();
    let (url, _fake) = serve(fake(&stored)).await;
    let report = dir.path().join("report.json");
    let out = migrator(&[
        "reconcile",
        "--acks",
        path.to_str().unwrap(),
        "--app",
        url.as_str(),
        "--report",
        report.to_str().unwrap(),
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("result: failed = 0 succeeded = 50"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "NO_COLOR ignored: {stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["reconcile"]["ok"], 50);
    assert_eq!(json["reconcile"]["lost"], 0);
    assert_eq!(json["steps"][0]["name"], "reconcile");
}

#[tokio::test]
async fn the_binary_fails_on_a_lost_order_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_acks(
        dir.path(),
        "acks.jsonl",
        &[ack("kept-1", Outcome::Ok), ack("gone-1", Outcome::Ok)],
    );
    let (url, _fake) = serve(fake(&[order("kept-1")])).await;
    let out = migrator(&[
        "reconcile",
        "--acks",
        path.to_str().unwrap(),
        "--app",
        url.as_str(),
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("lost ids: gone-1"), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
}

#[tokio::test]
async fn the_binary_exits_2_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_acks(dir.path(), "acks.jsonl", &[ack("x", Outcome::Ok)]);
    let (url, _fake) = serve(fake(&[order("x")])).await;

    let missing = dir.path().join("no-such-acks.jsonl");
    let out = migrator(&[
        "reconcile",
        "--acks",
        missing.to_str().unwrap(),
        "--app",
        url.as_str(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no-such-acks.jsonl"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = migrator(&[
        "reconcile",
        "--acks",
        path.to_str().unwrap(),
        "--app",
        "not a url",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("http://127.0.0.1:{port}/");
    let out = migrator(&[
        "reconcile",
        "--acks",
        path.to_str().unwrap(),
        "--app",
        &nowhere,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unreachable"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_large_log_is_indexed_in_parts_with_true_line_numbers() {
    // Above the size where indexing is split across threads.
    let dir = tempfile::tempdir().unwrap();
    let acks: Vec<_> = (0..60_000)
        .map(|i| ack(&format!("big-{i:06}"), Outcome::Ok))
        .collect();
    let path = write_acks(dir.path(), "big.jsonl", &acks);
    assert!(std::fs::metadata(&path).unwrap().len() > 8 << 20);
    let stored: Vec<_> = acks.iter().skip(1).map(|a| order(&a.id)).collect();
    let (url, _fake) = serve(fake(&stored)).await;
    let r = reconcile(&path, &url, &quick()).await.unwrap();
    assert_eq!((r.acked_total, r.ok, r.lost), (60_000, 59_999, 1));
    assert_eq!(r.ids.lost, ["big-000000"]);

    let mut text = std::fs::read_to_string(&path).unwrap();
    let at = text.match_indices('\n').nth(49_999).unwrap().0 + 1;
    text.insert_str(at, "{\"id\": oops}\n");
    std::fs::write(&path, text).unwrap();
    let err = reconcile(&path, &url, &quick()).await.unwrap_err();
    assert!(err.to_string().contains("line 50001"), "{err}");
}
