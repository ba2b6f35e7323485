//! `/admin/faults` on real processes: off without `--fault-injection`; with
//! it, a failing `/health` while everything else works, a follower that
//! stops applying while the head grows, and admin calls that are not
//! application requests.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::sqlite::temp_store;
use super::util::*;

const FAULTS: &str = "/admin/faults";

async fn arm(c: &reqwest::Client, app: &AppProc, body: &str) -> Reply {
    send(
        c.post(app.url(FAULTS))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
    .expect("post faults")
}

fn armed(health: &str, apply: &str) -> Value {
    json!({"health": health, "apply": apply})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_the_fault_routes_are_404() {
    let (_dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &[]);
    let c = client();
    let replies = [
        send(c.get(a.url(FAULTS))).await.expect("get"),
        arm(&c, &a, r#"{"health":"fail"}"#).await,
        send(c.delete(a.url(FAULTS))).await.expect("delete"),
    ];
    for r in replies {
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "not_found");
        assert_eq!(r.instance.as_deref(), Some("a"));
    }
    let h = get_json(&c, &a, "/health").await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert!(h.body["checks"].get("fault").is_none(), "{}", h.body);
}

/// `{"health": "fail"}`: 503 `healthy: false` with the reason, orders still
/// placed and read; bad requests change nothing; admin calls are not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_fault_fails_only_health() {
    let (_dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &["--fault-injection"]);
    let c = client();
    let shown = get_json(&c, &a, FAULTS).await;
    assert_eq!((shown.status, shown.body), (200, armed("ok", "resume")));

    let r = arm(&c, &a, r#"{"health":"fail"}"#).await;
    assert_eq!((r.status, &r.body), (200, &armed("fail", "resume")));
    assert_eq!(r.instance.as_deref(), Some("a"));
    let h = get_json(&c, &a, "/health").await;
    assert_eq!(h.status, 503, "{}", h.body);
    assert_eq!(h.body["healthy"], false);
    assert_eq!(h.body["checks"]["fault"], "fault injected");
    assert_eq!(h.body["checks"]["store"], "ok", "the store is fine");
    assert_eq!(h.body["lag"], 0);
    // The rest works.
    let placed = post_order(&c, &a, &order_body("f-1", "u-0001", 1)).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    assert_eq!(get_json(&c, &a, "/orders/f-1").await.status, 200);

    for (body, names) in [
        (r#"{"health":"sick"}"#, "\"health\""),
        (r#"{"apply":"stop"}"#, "\"apply\""),
        (r#"{"latency":5}"#, "\"latency\""),
        ("{}", "nothing to change"),
        ("{", "not JSON"),
    ] {
        let r = arm(&c, &a, body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "bad_fault", "{body}");
        let message = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(names), "{body}: {message}");
    }
    assert_eq!(get_json(&c, &a, FAULTS).await.body, armed("fail", "resume"));

    let r = arm(&c, &a, r#"{"health":"ok"}"#).await;
    assert_eq!(r.body, armed("ok", "resume"));
    let h = get_json(&c, &a, "/health").await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert!(h.body["checks"].get("fault").is_none(), "{}", h.body);

    arm(&c, &a, r#"{"health":"fail"}"#).await;
    let r = send(c.delete(a.url(FAULTS))).await.expect("delete");
    assert_eq!((r.status, r.body), (200, armed("ok", "resume")));
    let h = get_json(&c, &a, "/health").await;
    assert_eq!(h.status, 200, "{}", h.body);
    // Only the order and its read were application requests.
    assert_eq!(h.body["requests_total"], 2, "{}", h.body);
    assert_eq!(h.body["in_flight"], 0);
}

/// `{"apply": "pause"}` on B: A's orders raise B's head, B's `applied` stays
/// put (B does not list them, and turns 503 once the lag passes
/// `--max-lag`); `{"apply": "resume"}` catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_follower_holds_applied_while_the_head_grows() {
    let (_dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &[]);
    let b = AppProc::start(&url, "b", &["--fault-injection", "--max-lag", "10"]);
    let c = client();
    let r = arm(&c, &b, r#"{"apply":"pause"}"#).await;
    assert_eq!((r.status, &r.body), (200, &armed("ok", "pause")));
    let before = get_json(&c, &b, "/health").await.body;
    let applied = before["applied"].as_u64().expect("applied");

    for i in 0..20 {
        let r = post_order(&c, &a, &order_body(&format!("p-{i}"), "u-0001", 1)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let lagging = loop {
        let h = get_json(&c, &b, "/health").await;
        if h.body["head"].as_u64() >= Some(applied + 20) {
            break h;
        }
        assert!(Instant::now() < deadline, "B's head never grew: {}", h.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lagging.body["applied"], applied, "{}", lagging.body);
    assert_eq!(lagging.body["lag"], 20);
    assert_eq!(
        lagging.status, 503,
        "lag beyond --max-lag: {}",
        lagging.body
    );
    assert_eq!(
        lagging.body["checks"]["store"], "ok",
        "a pause is not a failure"
    );
    assert_eq!(get_json(&c, &b, "/orders/p-0").await.status, 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get_json(&c, &b, "/health").await.body["applied"], applied);

    let r = arm(&c, &b, r#"{"apply":"resume"}"#).await;
    assert_eq!(r.body, armed("ok", "resume"));
    wait_applied(&c, &b, applied + 20).await;
    let h = get_json(&c, &b, "/health").await;
    assert_eq!((h.status, &h.body["lag"]), (200, &json!(0)), "{}", h.body);
    assert_eq!(get_json(&c, &b, "/orders/p-19").await.status, 200);
}
