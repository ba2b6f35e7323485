//! API faults that hold calls: `delay_ms` answers late, `hang` answers only
//! when the faults are cleared — the migrator's "switch timeout" row.

use crate::util::*;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// PATCH of the test record's content with a client timeout: the status,
/// or `None` when the client gave up.
async fn patch_content(edge: &TestEdge, content: &str, timeout: Duration) -> Option<u16> {
    let rec = record_by_name(&cf(edge, TOKEN), ZONE_ID, HOST).await;
    let resp = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap()
        .patch(format!(
            "{}zones/{ZONE_ID}/dns_records/{}",
            edge.base(),
            rec.id
        ))
        .bearer_auth(TOKEN)
        .json(&json!({ "content": content }))
        .send()
        .await;
    resp.ok().map(|r| r.status().as_u16())
}

/// The record's content now.
async fn content(edge: &TestEdge) -> String {
    let rec = edge
        .api_json(&format!("zones/{ZONE_ID}/dns_records?name={HOST}"))
        .await;
    rec["result"][0]["content"].as_str().unwrap().to_string()
}

/// Waits (bounded) until `GET /admin/faults` says `waiting` calls are held.
async fn until_waiting(edge: &TestEdge, waiting: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = edge.admin_result("faults").await;
        if status["waiting"] == waiting {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waiting never became {waiting}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_answers_the_targeted_calls_late_and_the_rest_at_once() {
    let edge = EdgeBuilder::new().start();
    let armed = edge
        .arm(json!({"delay_ms": 400, "count": 2, "method": "PATCH"}))
        .await;
    assert_eq!(armed.status(), 200);
    let started = Instant::now();
    assert_eq!(edge.api_json("zones").await["success"], true);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "GET is not held"
    );
    for content in ["127.0.0.3", "127.0.0.4"] {
        let started = Instant::now();
        let status = patch_content(&edge, content, Duration::from_secs(30)).await;
        let took = started.elapsed();
        assert_eq!(status, Some(200), "no status: the call goes through");
        assert!(
            took >= Duration::from_millis(400),
            "answered after {took:?}"
        );
    }
    assert_eq!(content(&edge).await, "127.0.0.4");
    let started = Instant::now();
    assert_eq!(
        patch_content(&edge, "127.0.0.5", Duration::from_secs(30)).await,
        Some(200)
    );
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the fault is used up"
    );

    // With a status, the late answer is the error and nothing changes.
    edge.arm(json!({"delay_ms": 300, "status": 503, "count": 1, "method": "PATCH"}))
        .await;
    let started = Instant::now();
    assert_eq!(
        patch_content(&edge, "127.0.0.6", Duration::from_secs(30)).await,
        Some(503)
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(content(&edge).await, "127.0.0.5");
    let metrics = edge.scrape().await;
    assert_eq!(
        metric(&metrics, "edge_faults_injected_total"),
        3,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_answers_only_when_cleared() {
    let edge = std::sync::Arc::new(EdgeBuilder::new().start());
    edge.arm(json!({"hang": true, "count": 1, "method": "PATCH"}))
        .await;
    let patching = tokio::spawn({
        let edge = std::sync::Arc::clone(&edge);
        async move { patch_content(&edge, "127.0.0.3", Duration::from_secs(60)).await }
    });
    until_waiting(&edge, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!patching.is_finished(), "a hang has no end of its own");
    assert_eq!(
        content(&edge).await,
        "127.0.0.2",
        "other calls are answered"
    );
    let cleared = edge.admin(Method::DELETE, "faults").send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(patching.await.unwrap(), Some(200));
    assert_eq!(content(&edge).await, "127.0.0.3");
    until_waiting(&edge, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_the_client_gave_up_on_changes_nothing() {
    let edge = EdgeBuilder::new().start();
    edge.arm(json!({"hang": true, "count": 1, "method": "PATCH"}))
        .await;
    let status = patch_content(&edge, "127.0.0.3", Duration::from_millis(500)).await;
    assert_eq!(status, None, "the client timed out");
    // The client closed its connection: the held call is dropped.
    until_waiting(&edge, 0).await;
    edge.admin(Method::DELETE, "faults").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(content(&edge).await, "127.0.0.2", "the record is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_does_not_hold_up_shutdown() {
    let mut edge = EdgeBuilder::new().start();
    edge.arm(json!({"hang": true, "count": 1, "status": 503}))
        .await;
    let base = edge.base();
    let hung = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("{base}zones"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    until_waiting(&edge, 1).await;
    let started = Instant::now();
    let (exit, _edge) = tokio::task::spawn_blocking(move || (edge.terminate(), edge))
        .await
        .unwrap();
    assert!(exit.expect("the edge exits").success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        hung.await.unwrap().ok(),
        Some(503),
        "released with its status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_fault_bodies_name_the_field() {
    let edge = EdgeBuilder::new().start();
    let cases = [
        (json!({"count": 1}), "status"),
        (json!({"status": 429, "count": "two"}), "count"),
        (json!({"hang": "yes", "count": 1}), "hang"),
        (
            json!({"delay_ms": 10, "hang": true, "count": 1}),
            "delay_ms",
        ),
        (json!({"delay_ms": 0, "count": 1}), "delay_ms"),
        (
            json!({"status": 429, "count": 1, "dealy_ms": 5}),
            "dealy_ms",
        ),
    ];
    for (body, field) in cases {
        let resp = edge.arm(body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    assert!(edge.admin_result("faults").await["armed"].is_null());
}
