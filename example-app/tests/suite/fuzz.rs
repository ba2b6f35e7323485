//! Fuzzing `POST /orders` against a real instance (an in-process server on
//! `127.0.0.1:0` over a temporary SQLite store): arbitrary bytes, and bodies
//! that are almost orders (wrong types, huge numbers, unicode, missing and
//! extra fields, duplicate keys, trailing bytes, deep nesting, oversize)
//! under good and bad content types.
//!
//! For every body: no panic anywhere in the server; `201` appends exactly
//! one event and `200` none; every other reply is a JSON 4xx
//! `{"error": {"code", "message"}}` with `X-Instance`, and the store head did
//! not move. `PROPTEST_CASES` sets how many bodies (`scripts/fuzz-app.sh`
//! runs 100,000); the normal run takes [`DEFAULT_CASES`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use example_app::api::{ApiConfig, App};
use example_app::projection::Projection;
use example_app::store::EventStore;
use example_app::{follower, import};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::Value;

use super::sqlite::temp_store;
use super::util::*;

/// Bodies in the normal test run: a few seconds.
const DEFAULT_CASES: u32 = 5000;

/// The server's largest accepted body (`ApiConfig::body_limit`).
const BODY_LIMIT: usize = 64 * 1024;

/// Names the server's threads (runtime workers and its blocking pool), so
/// their panics can be told from the test's own (which proptest catches).
const SERVER_THREADS: &str = "fuzz-server";

/// Panics on the server's threads.
static SERVER_PANICS: AtomicU64 = AtomicU64::new(0);

/// One request: its `Content-Type` (none when absent) and body.
#[derive(Debug, Clone)]
struct Case {
    content_type: Option<String>,
    body: Vec<u8>,
    /// A well-formed order for a known user: must not be refused, except
    /// as a conflict with an earlier order under its id.
    valid: bool,
}

/// A running instance and what the checks need.
struct Target {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: String,
    store: Arc<dyn EventStore>,
    _dir: tempfile::TempDir,
}

impl Target {
    fn start() -> Target {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SERVER_THREADS)
            .enable_all()
            .build()
            .expect("runtime");
        let (dir, url) = temp_store();
        let (store, base) = rt.block_on(async {
            let store = open_store(&url).await;
            let projection = Arc::new(Projection::new());
            tokio::spawn(follower::follow(
                store.clone(),
                projection.clone(),
                tokio_util::sync::CancellationToken::new(),
            ));
            import::import(&*store, &projection, import::SEED)
                .await
                .expect("seed");
            follower::catch_up(&*store, &projection, Duration::from_secs(60))
                .await
                .expect("catch up");
            let app = App::new(
                "fuzz".into(),
                store.clone(),
                projection,
                ApiConfig::default(),
            )
            .expect("app");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            tokio::spawn(example_app::server::serve(
                listener,
                Arc::new(app),
                Box::pin(std::future::pending()),
                Duration::from_secs(10),
            ));
            (store, base)
        });
        Target {
            rt,
            client: client(),
            url: format!("{base}/orders"),
            store,
            _dir: dir,
        }
    }

    /// Sends one case and checks the reply and the head; the status on success.
    fn check(&self, case: &Case) -> Result<u16, TestCaseError> {
        self.rt.block_on(async {
            let before = head(&*self.store).await;
            let panics = SERVER_PANICS.load(Ordering::SeqCst);
            let mut req = self.client.post(&self.url).body(case.body.clone());
            if let Some(ct) = &case.content_type {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.map_err(|e| {
                let panicked = SERVER_PANICS.load(Ordering::SeqCst) > panics;
                let mut why = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    why.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                TestCaseError::fail(format!("no reply (server panicked: {panicked}): {why}"))
            })?;
            let status = resp.status().as_u16();
            let instance = resp.headers().get("x-instance").cloned();
            let json_reply = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| TestCaseError::fail(format!("reply body: {e}")))?;
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let after = head(&*self.store).await;
            prop_assert_eq!(
                SERVER_PANICS.load(Ordering::SeqCst),
                panics,
                "the server panicked"
            );
            prop_assert_eq!(instance.as_ref().map(|v| v.as_bytes()), Some(&b"fuzz"[..]));
            prop_assert!(json_reply, "{} reply is not JSON: {:?}", status, bytes);
            match status {
                201 => {
                    prop_assert_eq!(after, before + 1, "201 appended {}", after - before);
                    prop_assert!(body["id"].is_string(), "{}", body);
                }
                200 => prop_assert_eq!(after, before, "a retry appended"),
                400..=499 => {
                    prop_assert_eq!(after, before, "rejected with {} yet appended", status);
                    let code = body["error"]["code"].as_str().unwrap_or("");
                    let message = body["error"]["message"].as_str().unwrap_or("");
                    prop_assert!(!code.is_empty() && !message.is_empty(), "{}", body);
                    prop_assert!(
                        !case.valid || status == 409,
                        "a valid order was refused: {} {}",
                        status,
                        body
                    );
                }
                _ => return Err(TestCaseError::fail(format!("status {status}: {body}"))),
            }
            Ok(status)
        })
    }
}

/// Counts panics on the server's threads, then lets the previous hook print them.
fn count_server_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(SERVER_THREADS) {
            SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
}

/// A JSON string literal of `s`.
fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Ids: a small pool (so retries and conflicts happen), then everything an
/// id must not be.
fn id_text() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        30 => (0..300u32).prop_map(|n| (lit(&format!("fz-{n}")), true)),
        10 => "[A-Za-z0-9_.:-]{1,64}".prop_map(|s| (lit(&s), true)),
        1 => Just((lit(""), false)),
        1 => Just((lit(&"i".repeat(65)), false)),
        1 => "\\PC{1,20}".prop_map(|s| { let ok = example_app::domain::valid_id(&s); (lit(&s), ok) }),
        1 => Just((lit("has space"), false)),
        1 => Just((lit("nul\u{0}byte"), false)),
        1 => Just(("\"\\ud800\"".to_string(), false)),
        1 => scalar_text().prop_map(|v| (v, false)),
    ]
}

fn user_text() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        30 => (1..=60u32).prop_map(|n| (lit(&format!("u-{n:04}")), true)),
        1 => Just((lit("u-9999"), false)),
        1 => Just((lit(""), false)),
        1 => "\\PC{0,12}".prop_map(|s| (lit(&s), false)),
        1 => scalar_text().prop_map(|v| (v, false)),
    ]
}

/// JSON scalars of every type, as text (so numbers no `Value` holds fit too).
fn scalar_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        Just("1e309".to_string()),
        Just("-0".to_string()),
        Just("123456789012345678901234567890".to_string()),
        "\\PC{0,8}".prop_map(|s| lit(&s)),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ]
}

fn quantity_text() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        30 => (1..=1000u32).prop_map(|n| (n.to_string(), true)),
        1 => Just(("0".to_string(), false)),
        1 => Just(("1001".to_string(), false)),
        1 => Just(("-1".to_string(), false)),
        1 => Just((u32::MAX.to_string(), false)),
        1 => Just((u64::MAX.to_string(), false)),
        1 => Just(("1.5".to_string(), false)),
        1 => Just(("\"3\"".to_string(), false)),
        1 => scalar_text().prop_map(|v| (v, false)),
    ]
}

fn product_text() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        25 => "[a-z]{1,12}".prop_map(|s| (lit(&s), true)),
        5 => "\\PC{1,64}".prop_map(|s| (lit(&s), true)),
        1 => Just((lit(""), false)),
        1 => Just((lit(&"p".repeat(65)), false)),
        1 => Just((lit("tab\there"), false)),
        1 => scalar_text().prop_map(|v| (v, false)),
    ]
}

/// `{"product": …, "quantity": …}`, sometimes with a field missing or extra,
/// or not an object at all.
fn item_text() -> impl Strategy<Value = (String, bool)> {
    let fields = (product_text(), quantity_text(), 0..16u8);
    prop_oneof![
        30 => fields.prop_map(|((p, p_ok), (q, q_ok), shape)| match shape {
            0 => (format!("{{\"quantity\":{q}}}"), false),
            1 => (format!("{{\"product\":{p},\"quantity\":{q},\"price\":1}}"), false),
            _ => (format!("{{\"product\":{p},\"quantity\":{q}}}"), p_ok && q_ok),
        }),
        1 => scalar_text().prop_map(|v| (v, false)),
    ]
}

/// An order object as text: each field present or not, sometimes an extra
/// or a repeated key.
fn order_text() -> impl Strategy<Value = (String, bool)> {
    let items = prop_oneof![
        8 => prop::collection::vec(item_text(), 1..4),
        1 => prop::collection::vec(item_text(), 0..1),
        1 => prop::collection::vec(item_text(), 48..56),
    ];
    (id_text(), user_text(), items, 0..24u8).prop_map(
        |((id, id_ok), (user, user_ok), items, shape)| {
            let items_ok =
                !items.is_empty() && items.len() <= 50 && items.iter().all(|(_, ok)| *ok);
            let list = format!(
                "[{}]",
                items
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let valid = id_ok && user_ok && items_ok;
            match shape {
                0 => (
                    format!("{{\"user_id\":{user},\"line_items\":{list}}}"),
                    false,
                ),
                1 => (format!("{{\"id\":{id},\"line_items\":{list}}}"), false),
                2 => (format!("{{\"id\":{id},\"user_id\":{user}}}"), false),
                3 => (
                    format!(
                        "{{\"id\":{id},\"user_id\":{user},\"line_items\":{list},\"note\":\"x\"}}"
                    ),
                    false,
                ),
                4 => (
                    format!("{{\"id\":{id},\"id\":{id},\"user_id\":{user},\"line_items\":{list}}}"),
                    false,
                ),
                5 => (
                    format!("{{\"id\":{id},\"user_id\":{user},\"line_items\":{list}}}x"),
                    false,
                ),
                6 => (
                    format!(
                        "  {{ \"line_items\" : {list} , \"user_id\" : {user} , \"id\" : {id} }}\n"
                    ),
                    valid,
                ),
                _ => (
                    format!("{{\"id\":{id},\"user_id\":{user},\"line_items\":{list}}}"),
                    valid,
                ),
            }
        },
    )
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        12 => Just(Some("application/json".to_string())),
        1 => Just(None),
        1 => prop::sample::select(vec![
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "text/plain",
            "application/jsonx",
            "application/x-www-form-urlencoded",
            "",
            "application/json, text/plain",
            "multipart/form-data; boundary=x",
        ])
        .prop_map(|s| Some(s.to_string())),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}

fn body() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        8 => order_text().prop_map(|(t, ok)| (t.into_bytes(), ok)),
        // Exact retries of a few orders: 201 once, then 200.
        1 => (0..5u32).prop_map(|k| {
            let order = format!("{{\"id\":\"fz-retry-{k}\",\"user_id\":\"u-0002\",\"line_items\":[{{\"product\":\"p{k}\",\"quantity\":{}}}]}}", k + 1);
            (order.into_bytes(), true)
        }),
        2 => prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| (b, false)),
        1 => "\\PC{0,200}".prop_map(|s| (s.into_bytes(), false)),
        1 => scalar_text().prop_map(|s| (s.into_bytes(), false)),
        1 => (1..300usize).prop_map(|d| (format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes(), false)),
        // Oversize: a long id pushes an otherwise fine order past the limit.
        1 => (1..(4 * BODY_LIMIT)).prop_map(|extra| {
            let id = "o".repeat(BODY_LIMIT + extra);
            (format!("{{\"id\":\"{id}\",\"user_id\":\"u-0001\",\"line_items\":[{{\"product\":\"p\",\"quantity\":1}}]}}").into_bytes(), false)
        }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (content_type(), body()).prop_map(|(content_type, (body, ok))| {
        let json = content_type.as_deref().is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        Case {
            content_type,
            body,
            valid: ok && json,
        }
    })
}

#[test]
fn post_orders_survives_arbitrary_and_near_valid_bodies() {
    count_server_panics();
    let target = Target::start();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new());
    let started = Instant::now();
    let result = runner.run(&case(), |c| {
        let status = target.check(&c)?;
        *statuses.lock().unwrap().entry(status).or_default() += 1;
        Ok(())
    });
    let took = started.elapsed();
    let statuses = statuses.into_inner().unwrap();
    let passed: u64 = statuses.values().sum();
    println!(
        "fuzzed POST /orders: {passed} of {cases} cases passed in {:.1}s; replies by status {statuses:?}",
        took.as_secs_f64()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, case)) => panic!(
            "failed after {:.1}s: {why}\ncontent-type: {:?}\nbody ({} bytes): {:?}",
            took.as_secs_f64(),
            case.content_type,
            case.body.len(),
            String::from_utf8_lossy(&case.body[..case.body.len().min(2000)])
        ),
        Err(e) => panic!("{e}"),
    }
    assert!(
        statuses.contains_key(&201),
        "no order was ever placed: {statuses:?}"
    );
}
