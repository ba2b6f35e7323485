//! `/health` keeps a status per store task (blind spot 5) and the follower
//! refuses a skipped position (blind spot 6), on real processes: one task is
//! made to fail alone while the others succeed.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use example_app::store::NewEvent;

use super::pg_cluster::{self, TestDb};
use super::sqlite::temp_store;
use super::util::*;

/// Refuses every event app instance `a` places, from inside the store, so
/// its writer fails while other writers, readers and pollers work.
const SQLITE_REFUSE_A: &str = r#"
CREATE TRIGGER refuse_a BEFORE INSERT ON events
WHEN NEW.payload LIKE '%"placed_by":"a"%'
BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"#;

const PG_REFUSE_A: &str = r#"
CREATE FUNCTION refuse_a() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
CREATE TRIGGER refuse_a BEFORE INSERT ON events FOR EACH ROW
  WHEN (NEW.payload LIKE '%"placed_by":"a"%') EXECUTE FUNCTION refuse_a();"#;

fn sqlite_exec(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    conn.execute_batch(sql).expect(sql);
}

/// Polls `/health` until `done` holds for its body; returns that reply.
async fn health_until(app: &AppProc, what: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = get_json(&c, app, "/health").await;
        if done(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "{what}: {}", h.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn store_check(h: &Reply) -> &str {
    h.body["checks"]["store"].as_str().unwrap_or("")
}

/// Appends a company from this test process (another writer on the store).
async fn other_writer_commits(url: &str, id: &str) -> u64 {
    let store = open_store(url).await;
    let appended = store
        .append(NewEvent {
            kind: "CompanyRegistered".into(),
            key: id.into(),
            payload: format!("{{\"id\":\"{id}\",\"name\":\"Other\"}}"),
        })
        .await
        .expect("the other writer appends");
    appended.event.position
}

/// Starts instance `a` with one order placed.
async fn start_a_with_one_order(url: &str) -> AppProc {
    let a = AppProc::start(url, "a", &["--append-timeout", "10s"]);
    assert_eq!(place(&client(), &a, "w-1").await, 201);
    a
}

/// Places order `id` for user `u-0001`; the status.
async fn place(c: &reqwest::Client, app: &AppProc, id: &str) -> u16 {
    post_order(c, app, &order_body(id, "u-0001", 1))
        .await
        .status
}

/// Once the store takes `a`'s appends again, the writer's next commit
/// clears its failure.
async fn the_next_commit_clears_the_writer(c: &reqwest::Client, a: &AppProc) {
    assert_eq!(place(c, a, "w-3").await, 201);
    let h = health_until(a, "well again", |h| h.status == 200).await;
    assert_eq!(store_check(&h), "ok");
}

/// A's writer fails; then another process commits, which A's poller sees
/// and succeeds at. With one shared error slot that success said `store:
/// ok` while A could not append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_failure_is_not_hidden_by_the_poller() {
    let (dir, url) = temp_store();
    let a = start_a_with_one_order(&url).await;
    let c = client();
    sqlite_exec(&dir.path().join("events.db"), SQLITE_REFUSE_A);
    assert_eq!(place(&c, &a, "w-2").await, 503);
    let h = health_until(&a, "the writer's failure", |h| h.status == 503).await;
    assert!(store_check(&h).starts_with("writer: "), "{}", h.body);

    let position = other_writer_commits(&url, "c-other").await;
    let h = health_until(&a, "A sees the other commit", |h| {
        h.body["applied"].as_u64() >= Some(position)
    })
    .await;
    assert_eq!(
        h.status, 503,
        "the poller's success hid the writer: {}",
        h.body
    );
    assert_eq!(h.body["healthy"], false);
    let check = store_check(&h);
    assert!(
        check.starts_with("writer: ") && check.contains("refused by the test"),
        "{check}"
    );
    assert!(!check.contains("poller"), "{check}");
    // Reads go on: only the writer is failing.
    assert_eq!(get_json(&c, &a, "/orders/w-1").await.status, 200);

    sqlite_exec(&dir.path().join("events.db"), "DROP TRIGGER refuse_a");
    the_next_commit_clears_the_writer(&c, &a).await;
}

/// A hole at `head + 1` (the store broke its gap-free promise): the follower
/// says so on `/health` (503), applies nothing past it, and once the hole is
/// filled applies both in order. Before, it applied `head + 2` silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_skipped_position_fails_the_follower_and_nothing_is_skipped() {
    let (dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &[]);
    let c = client();
    let db = dir.path().join("events.db");
    let head = head(&*open_store(&url).await).await;
    let company = |p: u64, id: &str| {
        format!(
            "INSERT INTO events (position, kind, key, payload) VALUES \
             ({p}, 'CompanyRegistered', '{id}', '{{\"id\":\"{id}\",\"name\":\"{id}\"}}')"
        )
    };
    sqlite_exec(&db, &company(head + 2, "c-after-hole"));
    let h = health_until(&a, "the follower reports the hole", |h| h.status == 503).await;
    let check = store_check(&h);
    assert!(
        check.starts_with("follower: ")
            && check.contains(&format!("position {} was skipped", head + 1)),
        "{}",
        h.body
    );
    assert_eq!(h.body["healthy"], false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h = get_json(&c, &a, "/health").await;
    assert_eq!(h.body["applied"], head, "applied past the hole: {}", h.body);
    assert_eq!(h.status, 503, "{}", h.body);

    sqlite_exec(&db, &company(head + 1, "c-in-hole"));
    let h = health_until(&a, "caught up after the fill", |h| h.status == 200).await;
    assert_eq!(h.body["applied"], head + 2);
    assert_eq!(store_check(&h), "ok");
    let companies: HashSet<String> = get_json(&c, &a, "/companies")
        .await
        .body
        .as_array()
        .expect("companies")
        .iter()
        .filter_map(|co| co["id"].as_str().map(str::to_string))
        .collect();
    assert!(
        companies.contains("c-in-hole") && companies.contains("c-after-hole"),
        "{companies:?}"
    );
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// The PostgreSQL form: A's writer fails, then every session of A is
/// terminated (`pg_terminate_backend`); the listener reconnects and reads
/// the head, a success that used to clear the writer's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_writer_failure_is_not_hidden_by_the_listener() {
    let db = TestDb::create(pg_cluster::shared()).await;
    let a = start_a_with_one_order(&db.url).await;
    let c = client();
    let admin = pg(&db.url).await;
    admin.batch_execute(PG_REFUSE_A).await.expect("trigger");
    assert_eq!(place(&c, &a, "w-2").await, 503);

    let killed: Vec<i32> = admin
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND application_name = 'handover-example-app'",
            &[],
        )
        .await
        .expect("sessions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(killed.len() >= 2, "A's sessions: {killed:?}");
    for pid in &killed {
        admin
            .execute("SELECT pg_terminate_backend($1)", &[pid])
            .await
            .expect("terminate");
    }
    // The listener is back once a new session has read the head after LISTEN.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let back = admin
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND NOT (pid = ANY($1))
                   AND application_name = 'handover-example-app'
                   AND query = 'SELECT position FROM event_head'",
                &[&killed],
            )
            .await
            .expect("sessions");
        if !back.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the listener never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the follower's reader reconnect too.
    let h = health_until(&a, "only the writer fails", |h| {
        !store_check(h).contains("follower") && !store_check(h).contains("listener")
    })
    .await;
    assert_eq!(
        h.status, 503,
        "the listener's success hid the writer: {}",
        h.body
    );
    assert!(store_check(&h).starts_with("writer: "), "{}", h.body);
    assert_eq!(get_json(&c, &a, "/orders/w-1").await.status, 200);

    admin
        .batch_execute("DROP TRIGGER refuse_a ON events")
        .await
        .expect("drop trigger");
    the_next_commit_clears_the_writer(&c, &a).await;
}
