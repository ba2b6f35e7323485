//! The store contract on `postgres://`, plus what only a server store has:
//! restarts and connection errors.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::contract;
use super::pg_cluster::{self, PgCluster, TestDb};
use super::util::*;

async fn db() -> TestDb {
    TestDb::create(pg_cluster::shared()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_append_and_idempotency() {
    let db = db().await;
    contract::append_and_idempotency(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_two_writers_gap_free_and_converge() {
    let db = db().await;
    contract::two_writers_gap_free(&db.url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_many_appenders_every_subscriber_sees_each_once() {
    let db = db().await;
    contract::many_appenders_every_subscriber_sees_each_once(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_own_commits_interleaved_gap_free() {
    let db = db().await;
    contract::own_commits_interleaved_gap_free(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_same_id_on_two_instances() {
    let db = db().await;
    contract::same_id_on_two_instances(&db.url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_kill9_loses_no_ack() {
    let db = db().await;
    contract::kill9_loses_no_ack(&db.url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_group_commit_observable() {
    let db = db().await;
    contract::group_commit_observable(&db.url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_bad_inputs_append_nothing() {
    let db = db().await;
    contract::bad_inputs_append_nothing(&db.url, &[]).await;
}

/// Stop and start the server under load: 503 with Retry-After and an
/// unhealthy /health while it is down, recovery without a restart of the
/// app, and every acknowledged order still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_restart_under_load_loses_nothing() {
    let cluster = PgCluster::start_private();
    let a = AppProc::start(&cluster.url, "a", &["--append-timeout", "3s"]);
    let c = client();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let saw_503 = Arc::new(Mutex::new(Vec::<Reply>::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (c, acked, saw_503, stop, url) = (
                c.clone(),
                acked.clone(),
                saw_503.clone(),
                stop.clone(),
                a.url("/orders"),
            );
            tokio::spawn(async move {
                for i in 0..1_000_000 {
                    if stop.is_cancelled() {
                        return;
                    }
                    let id = format!("rs-{t}-{i}");
                    match send(c.post(&url).json(&order_body(&id, "u-0005", 1))).await {
                        Ok(r) if r.status == 201 || r.status == 200 => {
                            acked.lock().unwrap().push(id)
                        }
                        Ok(r) if r.status == 503 => {
                            saw_503.lock().unwrap().push(r);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(r) => panic!("{id}: unexpected {} {}", r.status, r.body),
                        Err(e) => panic!("{id}: {e}"),
                    }
                }
            })
        })
        .collect();
    let wait_acks = |n: usize| {
        let acked = acked.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked.lock().unwrap().len() < n {
                assert!(
                    Instant::now() < deadline,
                    "load stalled at {}",
                    acked.lock().unwrap().len()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_acks(300).await;

    cluster.stop();
    // While down: appends get 503 + Retry-After, /health is 503 naming the store.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = get_json(&c, &a, "/health").await;
        if h.status == 503 && h.body["checks"]["store"] != "ok" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health never noticed the outage: {}",
            h.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = post_order(&c, &a, &order_body("during-outage", "u-0005", 1)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert_eq!(r.body["error"]["code"], "store_unavailable");
    let acked_before_restart = acked.lock().unwrap().len();

    cluster.restart();
    wait_acks(acked_before_restart + 300).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(&c, &a, "/health").await.status != 200 {
        assert!(Instant::now() < deadline, "health never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    for t in tasks {
        t.await.expect("load task");
    }

    let acked = acked.lock().unwrap().clone();
    let store = open_store(&cluster.url).await;
    let stored: HashSet<String> = all_events(&*store)
        .await
        .into_iter()
        .map(|e| e.key)
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged orders lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let listed: HashSet<String> = list_ndjson(&c, &a)
        .await
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert!(
        acked.iter().all(|id| listed.contains(id)),
        "A's projection misses acked orders"
    );
}

/// An instance whose writer failed during an outage and then saw no more
/// orders (B after a cutover: idle until traffic comes) must not stay
/// unhealthy once the store is back: the nemesis found a migrator waiting
/// forever for such a B's `checks.store` to say ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_an_idle_writer_recovers_its_health_after_an_outage() {
    let cluster = PgCluster::start_private();
    let a = AppProc::start(&cluster.url, "a", &["--append-timeout", "2s"]);
    let c = client();
    cluster.stop();
    let r = post_order(&c, &a, &order_body("during-outage", "u-0005", 1)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let h = get_json(&c, &a, "/health").await;
    assert!(
        h.body["checks"]["store"]
            .as_str()
            .unwrap_or("")
            .contains("writer"),
        "{}",
        h.body
    );
    cluster.restart();
    // No order after the restart: only the writer's own check can clear it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = get_json(&c, &a, "/health").await;
        if h.status == 200 && h.body["checks"]["store"] == "ok" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health never recovered: {}",
            h.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn run_app(store: &str, extra_env: &[(&str, &str)]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--store",
            store,
            "--connect-timeout",
            "3s",
        ])
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_bad_or_unreachable_url_exits_2_without_the_password() {
    let cluster = pg_cluster::shared();
    let u = url::Url::parse(&cluster.url).expect("url");
    let host = u.host_str().expect("host");
    let port = u.port().expect("port");
    // A free port: bind one and close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let cases = [
        (
            format!("postgres://handover:Sup3rSecretPw@{host}:{port}/handover"),
            "password authentication failed",
        ),
        (
            format!("postgres://handover:Sup3rSecretPw@127.0.0.1:{closed}/handover"),
            "cannot connect",
        ),
        (
            {
                let mut wrong_db = u.clone();
                wrong_db.set_path("/no_such_db");
                wrong_db.to_string()
            },
            "does not exist",
        ),
        (
            "postgres://handover:Sup3rSecretPw@[::1/x".to_string(),
            "invalid postgres URL",
        ),
    ];
    for (url, want) in cases {
        let (code, err, took) = run_app(&url, &[("RUST_LOG", "debug")]);
        assert_eq!(code, Some(2), "{want}: {err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(!err.contains("Sup3rSecretPw"), "password printed: {err}");
        if let Some(real) = u.password() {
            assert!(!err.contains(real), "password printed: {err}");
        }
        assert!(took < Duration::from_secs(30), "{want}: took {took:?}");
    }
    // A server that accepts but never answers: the connect timeout (3s) bounds the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().take(1).flatten() {
            held.push(conn);
            std::thread::sleep(Duration::from_secs(15));
        }
    });
    let (code, err, took) = run_app(
        &format!("postgres://u:Sup3rSecretPw@127.0.0.1:{port}/db"),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("Sup3rSecretPw"));
    assert!(took < Duration::from_secs(12), "took {took:?}");
    drop(holder);
}

/// The running app never logs the password, even at debug level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_password_never_logged() {
    let db = db().await;
    let password = url::Url::parse(&db.url)
        .expect("url")
        .password()
        .expect("password")
        .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--store",
            &db.url,
            "--instance-id",
            "a",
        ])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let guard = KillOnDrop(&mut child);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(guard.0.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("listening line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    let base = format!("http://{}", v["addr"].as_str().expect("addr"));
    let c = client();
    let r = send(
        c.post(format!("{base}/orders"))
            .json(&order_body("pw-1", "u-0001", 1)),
    )
    .await
    .expect("post");
    assert_eq!(r.status, 201);
    let h = send(c.get(format!("{base}/health"))).await.expect("health");
    assert!(!h.body.to_string().contains(&password));
    drop(guard);
    let text = std::fs::read_to_string(&log).expect("read log");
    assert!(
        text.contains("***"),
        "the store URL is logged redacted: {text}"
    );
    assert!(!text.contains(&password), "password in the log");
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
