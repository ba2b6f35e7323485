//! kv-service: one and two instances over one log file.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};

use crate::util::*;

fn start(log: &Path, instance: &str, extra: &[&str]) -> Proc {
    let log = log.to_str().unwrap();
    let args = [
        &[
            "--listen",
            "127.0.0.1:0",
            "--log",
            log,
            "--instance",
            instance,
        ],
        extra,
    ]
    .concat();
    Proc::start(KV, &args, &[])
}

async fn start_healthy(c: &reqwest::Client, log: &Path, instance: &str, extra: &[&str]) -> Proc {
    let p = start(log, instance, extra);
    wait_status(c, &p.url("/healthz"), 200).await;
    p
}

async fn put(c: &reqwest::Client, p: &Proc, key: &str, value: Value) -> Reply {
    send(
        c.put(p.url(&format!("/kv/{key}")))
            .json(&json!({ "value": value })),
    )
    .await
}

/// Every key of the listing, following `next` from `first`; also the page count.
async fn list_all(c: &reqwest::Client, p: &Proc, first: &str) -> (Vec<(String, Value)>, usize) {
    let (mut items, mut pages, mut path) = (Vec::new(), 0, Some(first.to_string()));
    while let Some(next) = path {
        let page = send(c.get(p.url(&next))).await;
        assert_eq!(page.status, 200, "{next}: {}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            items.push((
                item["key"].as_str().unwrap().to_string(),
                item["value"].clone(),
            ));
        }
        pages += 1;
        path = page.body["next"].as_str().map(str::to_string);
    }
    (items, pages)
}

#[tokio::test]
async fn kv_writes_are_idempotent_conflicts_are_409_and_bad_input_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let a = start_healthy(&c, &dir.path().join("kv.log"), "a", &[]).await;

    let created = put(&c, &a, "k1", json!({"n": 1})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body,
        json!({"key": "k1", "value": {"n": 1}, "instance": "a"})
    );
    assert!(
        created.headers.get("x-instance").is_none(),
        "the instance is only in the body"
    );
    let again = put(&c, &a, "k1", json!({"n": 1})).await;
    assert_eq!((again.status, again.body), (200, created.body.clone()));
    let other = put(&c, &a, "k1", json!({"n": 2})).await;
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(
        other.body["value"],
        json!({"n": 1}),
        "the conflict names what is stored"
    );

    for (path, body) in [
        ("/kv/a%20b", r#"{"value":1}"#),
        ("/kv/k2", "not json"),
        ("/kv/k2", r#"{"val":1}"#),
        ("/kv/k2", r#"{"value":1,"extra":2}"#),
        ("/kv/k2", ""),
    ] {
        let r = send(c.put(a.url(path)).body(body)).await;
        assert_eq!(r.status, 400, "PUT {path} {body}: {}", r.body);
        assert!(r.body["error"].is_string(), "{}", r.body);
    }
    for query in [
        "limit=0",
        "limit=10001",
        "limit=abc",
        "after=a%20b",
        "prefix=a/b",
    ] {
        let r = send(c.get(a.url(&format!("/kv?{query}")))).await;
        assert_eq!(r.status, 400, "GET /kv?{query}: {}", r.body);
    }
    let listing = send(c.get(a.url("/kv"))).await;
    assert_eq!(
        listing.body,
        json!({"items": [{"key": "k1", "value": {"n": 1}}], "next": null})
    );

    let health = send(c.get(a.url("/healthz"))).await;
    assert_eq!((health.status, health.body), (200, json!("ok\n")));
    let m = Metrics::scrape(&c, &a).await;
    assert_eq!(m.series("kv_log_head"), 4, "{}", m.0);
    assert_eq!(
        (m.sum("kv_log_head", &[]), m.sum("kv_applied_records", &[])),
        (1, 1)
    );
    let put_route = r#"route="/kv/{key}""#;
    assert_eq!(
        m.sum("kv_requests_total", &[put_route, r#"status="201""#]),
        1
    );
    assert_eq!(
        m.sum("kv_requests_total", &[put_route, r#"status="200""#]),
        1
    );
    assert_eq!(
        m.sum("kv_requests_total", &[put_route, r#"status="409""#]),
        1
    );
    assert_eq!(
        m.sum("kv_requests_total", &[put_route, r#"status="400""#]),
        5,
        "{}",
        m.0
    );
    assert_eq!(
        m.sum("kv_requests_total", &[r#"route="/kv""#]),
        6,
        "{}",
        m.0
    );
    assert_eq!(
        m.sum("kv_requests_total", &[]),
        14,
        "/metrics and /healthz are not counted:\n{}",
        m.0
    );
}

/// A write on A reaches B only when B follows the log: B's applied position
/// lags the head, then catches up; writes on B are decided against the
/// whole log even before B has followed it.
#[tokio::test]
async fn kv_two_instances_share_one_log_with_replication_lag() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kv.log");
    let c = client();
    let a = start_healthy(&c, &log, "a", &["--follow-every", "20ms"]).await;
    let b = start_healthy(&c, &log, "b", &["--follow-every", "1500ms"]).await;

    // B's follower might tick right between a write and the scrape: retry.
    let mut lag_seen = None;
    for i in 0..5 {
        let key = format!("from-a-{i}");
        assert_eq!(put(&c, &a, &key, json!(i)).await.status, 201);
        let (mb, ma) = (Metrics::scrape(&c, &b).await, Metrics::scrape(&c, &a).await);
        let head = ma.sum("kv_log_head", &[]);
        assert_eq!(
            mb.sum("kv_log_head", &[]),
            head,
            "both read the head from the file"
        );
        assert_eq!(
            ma.sum("kv_applied_records", &[]),
            head,
            "A applied its own write"
        );
        if mb.sum("kv_applied_records", &[]) < head {
            lag_seen = Some((key, head));
            break;
        }
    }
    let (key, head) = lag_seen.expect("B's applied position never lagged the head");
    let missing = send(c.get(b.url("/kv"))).await;
    assert!(
        !missing.body.to_string().contains(&key),
        "B served {key} before following the log"
    );
    // B's writer reads the log under the lock: the key is taken, even on B.
    let conflict = put(&c, &b, &key, json!("b's value")).await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);

    let deadline = Instant::now() + TIMEOUT;
    while Metrics::scrape(&c, &b).await.sum("kv_applied_records", &[]) < head {
        assert!(Instant::now() < deadline, "B never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (on_b, _) = list_all(&c, &b, "/kv").await;
    assert!(on_b.iter().any(|(k, _)| *k == key), "{on_b:?}");

    let from_b = put(&c, &b, "from-b", json!("x")).await;
    assert_eq!(
        (from_b.status, &from_b.body["instance"]),
        (201, &json!("b"))
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (on_a, _) = list_all(&c, &a, "/kv").await;
        if on_a.iter().any(|(k, _)| k == "from-b") {
            assert_eq!(
                on_a,
                list_all(&c, &b, "/kv").await.0,
                "A and B hold the same map"
            );
            break;
        }
        assert!(Instant::now() < deadline, "A never saw B's write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store of a few thousand keys: start-up catches up before it is
/// healthy, concurrent writes are group-committed, and the listing pages
/// through every key once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_catches_up_at_start_and_pages_through_thousands_of_keys() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kv.log");
    let mut file = std::fs::File::create(&log).unwrap();
    for i in 0..20_000 {
        writeln!(
            file,
            "{}",
            json!({"key": format!("pre-{i:05}"), "value": i, "instance": "old"})
        )
        .unwrap();
    }
    drop(file);
    let c = client();
    let a = start(&log, "a", &[]);
    // Until it has applied the whole log it says so, and lists nothing:
    // the first listing it serves is complete.
    let deadline = Instant::now() + TIMEOUT;
    let mut unready_seen = 0;
    loop {
        // The last record of the log: there only once all is applied.
        let listing = send(c.get(a.url("/kv?after=pre-19998"))).await;
        if listing.status == 200 {
            let items = &listing.body["items"];
            assert_eq!(items, &json!([{"key": "pre-19999", "value": 19_999}]));
            break;
        }
        assert_eq!(listing.status, 503, "{}", listing.body);
        if send(c.get(a.url("/healthz"))).await.status == 200 {
            // It finished catching up between the two requests (CI saw
            // 503 then 200 once): from now on it must list.
            let again = send(c.get(a.url("/kv?after=pre-19998"))).await;
            assert_eq!(
                again.status, 200,
                "healthy, yet not listing: {}",
                again.body
            );
            continue;
        }
        unready_seen += 1;
        assert!(Instant::now() < deadline, "never caught up");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("answered 503 {unready_seen} times while catching up");
    assert_eq!(list_all(&c, &a, "/kv").await.0.len(), 20_000);
    let health = send(c.get(a.url("/healthz"))).await;
    assert_eq!((health.status, health.body), (200, json!("ok\n")));
    assert_eq!(
        Metrics::scrape(&c, &a).await.sum("kv_applied_records", &[]),
        20_000
    );

    let started = Instant::now();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (c, url) = (c.clone(), a.url("/kv"));
            tokio::spawn(async move {
                for i in 0..40 {
                    let r = send(
                        c.put(format!("{url}/new-{w:02}-{i:02}"))
                            .json(&json!({"value": i})),
                    )
                    .await;
                    assert_eq!(r.status, 201, "{}", r.body);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    eprintln!("640 concurrent writes took {:?}", started.elapsed());

    let (items, pages) = list_all(&c, &a, "/kv").await;
    assert_eq!((items.len(), pages), (20_640, 21), "default limit 1000");
    let keys: Vec<&String> = items.iter().map(|(k, _)| k).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "keys in order, each once"
    );
    let (new, new_pages) = list_all(&c, &a, "/kv?prefix=new-&limit=100").await;
    assert_eq!((new.len(), new_pages), (640, 7), "one run's keys");
    assert!(new.iter().all(|(k, _)| k.starts_with("new-")));
    let (items_700, pages_700) = list_all(&c, &a, "/kv?limit=700").await;
    assert_eq!((items_700, pages_700), (items, 30));
    let head = Metrics::scrape(&c, &a).await.sum("kv_log_head", &[]);
    assert_eq!(head, 20_640);
}

/// A line in the log that is not a record stops the instance from serving,
/// with the reason on `/healthz`; once the file is repaired it catches up.
#[tokio::test]
async fn kv_a_corrupt_log_makes_the_instance_unready_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kv.log");
    let good = format!("{}\n", json!({"key": "k1", "value": 1, "instance": "old"}));
    std::fs::write(&log, format!("{good}this is not a record\n")).unwrap();
    let c = client();
    let a = start(&log, "a", &["--follow-every", "20ms"]);
    let deadline = Instant::now() + TIMEOUT;
    let health = loop {
        let health = send(c.get(a.url("/healthz"))).await;
        if health
            .body
            .as_str()
            .is_some_and(|b| b.contains("cannot follow"))
        {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "never reported the corrupt line: {}",
            health.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(health.status, 503);
    assert!(
        health.body.as_str().unwrap().contains("kv.log"),
        "{}",
        health.body
    );
    assert_eq!(send(c.get(a.url("/kv"))).await.status, 503);
    assert_eq!(put(&c, &a, "k2", json!(2)).await.status, 503);
    // The head cannot be counted past a line that is not a record.
    assert_eq!(send(c.get(a.url("/metrics"))).await.status, 503);

    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(good.len() as u64)
        .unwrap();
    wait_status(&c, &a.url("/healthz"), 200).await;
    assert_eq!(
        list_all(&c, &a, "/kv").await.0,
        [("k1".to_string(), json!(1))]
    );
    assert_eq!(put(&c, &a, "k2", json!(2)).await.status, 201);
}

#[tokio::test]
async fn kv_lose_every_acknowledges_writes_it_never_stores() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let a = start_healthy(&c, &dir.path().join("kv.log"), "a", &["--lose-every", "3"]).await;
    for i in 1..=9 {
        let r = put(&c, &a, &format!("k{i}"), json!(i)).await;
        assert_eq!(r.status, 201, "k{i}: {}", r.body);
    }
    let (items, _) = list_all(&c, &a, "/kv").await;
    let stored: BTreeSet<String> = items.into_iter().map(|(k, _)| k).collect();
    let expected: BTreeSet<String> = [1, 2, 4, 5, 7, 8].iter().map(|i| format!("k{i}")).collect();
    assert_eq!(stored, expected);
    assert_eq!(Metrics::scrape(&c, &a).await.sum("kv_log_head", &[]), 6);
}

/// SIGTERM while a write waits for the log's lock (held here): no new
/// connections, the write still completes, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_sigterm_finishes_the_write_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kv.log");
    let c = client();
    let mut a = start_healthy(&c, &log, "a", &[]).await;
    let lock = Flock::lock(std::fs::File::open(&log).unwrap(), FlockArg::LockExclusive).unwrap();
    let in_flight = tokio::spawn({
        let (c, url) = (c.clone(), a.url("/kv/slow"));
        async move { send(c.put(url).json(&json!({"value": 1}))).await }
    });
    a.sigterm_during(&in_flight).await;
    drop(lock);
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 201, "{}", reply.body);
    a.assert_drained_and_exited_0();
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains(r#""key":"slow""#));
}

#[test]
fn kv_bad_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kv.log");
    let log = log.to_str().unwrap();
    let dir_as_log = dir.path().to_str().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    for (args, names) in [
        (vec!["--instance", "a"], "--log"),
        (vec!["--log", log], "--instance"),
        (
            vec!["--log", log, "--instance", "a", "--follow-every", "0s"],
            "--follow-every",
        ),
        (
            vec!["--log", log, "--instance", "a", "--follow-every", "soon"],
            "--follow-every",
        ),
        (
            vec!["--log", log, "--instance", "a", "--lose-every", "0"],
            "--lose-every",
        ),
        (vec!["--log", log, "--instance", "a b"], "--instance"),
        (vec!["--log", dir_as_log, "--instance", "a"], "--log"),
        (
            vec!["--log", log, "--instance", "a", "--listen", &busy],
            "--listen",
        ),
    ] {
        let (code, stderr) = run_to_exit(KV, &args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(names),
            "{args:?} should name {names}: {stderr}"
        );
    }
}
