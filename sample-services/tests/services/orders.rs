//! pg-orders against a real PostgreSQL.

use serde_json::{json, Value};

use crate::pg::TestDb;
use crate::util::*;

const ENV: &str = "PG_ORDERS_DATABASE_URL";

fn start(db: &TestDb, instance: &str, extra: &[&str]) -> Proc {
    let args = [&["--listen", "127.0.0.1:0", "--instance", instance], extra].concat();
    Proc::start(PG_ORDERS, &args, &[(ENV, &db.url)])
}

async fn post(c: &reqwest::Client, p: &Proc, body: Value) -> Reply {
    send(c.post(p.url("/api/orders")).json(&body)).await
}

fn served_by(r: &Reply) -> &str {
    r.headers
        .get("x-served-by")
        .map_or("", |v| v.to_str().unwrap())
}

/// The reply's status and `X-Served-By`, with the body on failure.
fn assert_reply(r: &Reply, status: u16, instance: &str) {
    assert_eq!((r.status, served_by(r)), (status, instance), "{}", r.body);
}

/// The query a migration plan's `[reconcile] kind = "sql"` uses.
const RECONCILE_QUERY: &str =
    "SELECT id, body->>'item' FROM orders WHERE id LIKE $1 || '-%' ORDER BY id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_two_instances_store_each_order_once_in_postgres() {
    let db = TestDb::create().await;
    let c = client();
    let (a, b) = (start(&db, "a", &[]), start(&db, "b", &[]));
    for p in [&a, &b] {
        let status = send(c.get(p.url("/status"))).await;
        assert_eq!((status.status, &status.body), (200, &json!({"ok": true})));
    }

    let order = json!({"id": "run1-1", "item": "widget", "qty": 2});
    let created = post(&c, &a, order.clone()).await;
    assert_reply(&created, 201, "a");
    assert_eq!(created.body, order, "the instance is only in the header");
    let again = post(&c, &b, order.clone()).await;
    assert_reply(&again, 200, "b");
    let conflict = post(&c, &b, json!({"id": "run1-1", "item": "gadget", "qty": 2})).await;
    assert_reply(&conflict, 409, "b");
    assert_eq!(
        post(&c, &b, json!({"id": "run1-2", "item": "gadget", "qty": 1}))
            .await
            .status,
        201
    );
    assert_eq!(
        post(
            &c,
            &a,
            json!({"id": "run2-1", "item": "other run", "qty": 1})
        )
        .await
        .status,
        201
    );

    for bad in [
        "not json",
        "",
        r#"{"id": "run1-3", "item": "widget"}"#,
        r#"{"id": "run1-3", "item": "widget", "qty": 0}"#,
        r#"{"id": "run1-3", "item": "widget", "qty": -1}"#,
        r#"{"id": "run 1", "item": "widget", "qty": 1}"#,
        r#"{"id": "run1-3", "item": "", "qty": 1}"#,
        r#"{"id": "run1-3", "item": "widget", "qty": 1, "price": 3}"#,
    ] {
        let r = send(
            c.post(a.url("/api/orders"))
                .header("content-type", "application/json")
                .body(bad),
        )
        .await;
        assert_reply(&r, 400, "a");
        assert!(r.body["error"].is_string(), "{}", r.body);
    }

    let pg = db.client().await;
    let rows = pg.query(RECONCILE_QUERY, &[&"run1"]).await.unwrap();
    let listed: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        listed,
        [
            ("run1-1".into(), "widget".into()),
            ("run1-2".into(), "gadget".into())
        ]
    );
    let row = pg
        .query_one(
            "SELECT instance, body::text FROM orders WHERE id = 'run1-1'",
            &[],
        )
        .await
        .unwrap();
    let (instance, body): (String, String) = (row.get(0), row.get(1));
    assert_eq!(instance, "a");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), order);

    // Our own cluster checks passwords: a wrong one is exit 1, unprinted.
    if db.is_private() {
        let (userinfo, server) = db.url.split_once('@').unwrap();
        let user = userinfo
            .trim_start_matches("postgres://")
            .split(':')
            .next()
            .unwrap();
        let wrong = format!("postgres://{user}:WrongPw4711@{server}");
        let args = ["--listen", "127.0.0.1:0", "--instance", "c"];
        let (code, stderr) = run_to_exit(PG_ORDERS, &args, &[(ENV, &wrong)]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("password authentication failed"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("WrongPw4711"),
            "the password was printed: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_lose_every_and_sigterm_with_an_insert_in_flight() {
    let db = TestDb::create().await;
    let c = client();
    let lossy = start(&db, "lossy", &["--lose-every", "2"]);
    for i in 1..=4 {
        let r = post(
            &c,
            &lossy,
            json!({"id": format!("lose-{i}"), "item": "widget", "qty": 1}),
        )
        .await;
        assert_eq!(r.status, 201, "lose-{i}: {}", r.body);
    }
    let pg = db.client().await;
    let rows = pg.query(RECONCILE_QUERY, &[&"lose"]).await.unwrap();
    let stored: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(stored, ["lose-1", "lose-3"]);

    // A transaction here holds the id: the service's INSERT waits on it.
    let mut holder = db.client().await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("INSERT INTO orders (id, body, instance) VALUES ('slow-1', '{}', 'test')")
        .await
        .unwrap();
    let mut a = start(&db, "a", &[]);
    let in_flight = tokio::spawn({
        let (c, url) = (c.clone(), a.url("/api/orders"));
        async move {
            send(
                c.post(url)
                    .json(&json!({"id": "slow-1", "item": "widget", "qty": 1})),
            )
            .await
        }
    });
    a.sigterm_during(&in_flight).await;
    tx.rollback().await.unwrap();
    let reply = in_flight.await.unwrap();
    assert_reply(&reply, 201, "a");
    a.assert_drained_and_exited_0();
}

/// Bad configuration exits 2, an unreachable database 1; the password in
/// the URL is never printed.
#[test]
fn orders_bad_configuration_exits_without_printing_the_password() {
    let secret = "Tops3cretPw";
    let bad_port = format!("postgres://u:{secret}@127.0.0.1:notaport/db");
    let unreachable = format!("postgres://u:{secret}@127.0.0.1:1/db");
    let cases: [(&[&str], Option<&str>, i32, &str); 5] = [
        (&["--instance", "a"], None, 2, ENV),
        (&["--instance", "a"], Some(&bad_port), 2, ENV),
        (&["--instance", "a"], Some(&unreachable), 1, ENV),
        (&["--instance", "a b"], Some(&unreachable), 2, "--instance"),
        (
            &["--instance", "a", "--lose-every", "0"],
            Some(&unreachable),
            2,
            "--lose-every",
        ),
    ];
    for (args, url, want, names) in cases {
        let env: Vec<(&str, &str)> = url.map(|u| (ENV, u)).into_iter().collect();
        let args = [&["--listen", "127.0.0.1:0"], args].concat();
        let (code, stderr) = run_to_exit(PG_ORDERS, &args, &env);
        assert_eq!(code, Some(want), "{args:?}: {stderr}");
        assert!(
            stderr.contains(names),
            "{args:?} should name {names}: {stderr}"
        );
        assert!(
            !stderr.contains(secret),
            "the password was printed: {stderr}"
        );
    }
}
