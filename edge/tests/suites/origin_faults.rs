//! Proxy faults per origin on real sockets: the edge binary, origins on
//! 127.0.0.2/127.0.0.3, faults armed through `/admin/origins/{ip}/faults`.

use crate::util::*;
use reqwest::Method;
use serde_json::json;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

const A: &str = "127.0.0.2";
const B: &str = "127.0.0.3";

/// The proxy fault counter of `origin` and `kind` in a `/metrics` scrape.
fn injected(metrics: &str, origin: &str, kind: &str) -> u64 {
    metric(
        metrics,
        &format!("edge_proxy_faults_injected_total{{origin=\"{origin}\",fault=\"{kind}\"}}"),
    )
}

/// One request through the proxy: status and time taken.
async fn timed(client: &reqwest::Client, edge: &TestEdge) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _) = via_proxy(client, edge.proxy).await;
    (status, started.elapsed())
}

/// `n` requests through the proxy, each a 200 that took `min..max`.
async fn assert_each_took(
    client: &reqwest::Client,
    edge: &TestEdge,
    n: usize,
    (min, max): (Duration, Duration),
    what: &str,
) {
    for _ in 0..n {
        let (status, took) = timed(client, edge).await;
        assert_eq!(status, 200);
        assert!(took >= min && took < max, "took {took:?} with {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added_per_request_until_cleared() {
    let (edge, _a) = EdgeBuilder::new().with_origin(Behaviour::Answer).await;
    let client = pooled_client();
    let mut base = Duration::ZERO;
    for _ in 0..5 {
        let (status, took) = timed(&client, &edge).await;
        assert_eq!(status, 200);
        base = base.max(took);
    }
    let armed = edge.arm_origin(A, json!({"latency_ms": 300})).await;
    assert_eq!(armed["result"]["latency"]["latency_ms"], 300);
    assert!(armed["result"]["latency"]["remaining_ms"].is_null());
    let ms = Duration::from_millis;
    let slack = base + ms(500);
    assert_each_took(
        &client,
        &edge,
        4,
        (ms(300), ms(300) + slack),
        "300 ms added",
    )
    .await;
    // Another origin's latency does not touch this one.
    edge.arm_origin(B, json!({"latency_ms": 5000})).await;
    edge.arm_origin(A, json!({"latency_ms": 200, "jitter_ms": 100}))
        .await;
    let jittered = (ms(100), ms(300) + slack);
    assert_each_took(&client, &edge, 4, jittered, "200 ± 100 ms added").await;
    let listed = edge.admin_result("origins").await;
    let ips: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["origin"].as_str())
        .collect();
    assert_eq!(ips, [A, B]);
    assert_eq!(listed[0]["injected"]["latency"], 8);

    edge.clear_origin(A).await;
    let (status, took) = timed(&client, &edge).await;
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_millis(100) + base,
        "{took:?} after clearing"
    );
    let metrics = edge.scrape().await;
    assert_eq!(injected(&metrics, A, "latency"), 8, "{metrics}");
    assert_eq!(injected(&metrics, B, "latency"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_closes_the_client_connection_with_an_rst_and_no_response() {
    let (edge, a) = EdgeBuilder::new().with_origin(Behaviour::Answer).await;
    // A connection that was served before the fault is reset too.
    let mut kept = tokio::net::TcpStream::connect(edge.proxy).await.unwrap();
    let first = raw_get_on(&mut kept, HOST).await.unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let hits = a.hits();

    edge.arm_origin(A, json!({"reset": true})).await;
    let err = raw_get_on(&mut kept, HOST).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let err = raw_get(edge.proxy, HOST).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let client_error = to_proxy(&fresh_client(), edge.proxy, HOST).send().await;
    assert!(client_error.is_err(), "{client_error:?}");
    assert_eq!(a.hits(), hits, "a reset request never reaches the origin");
    // A host on another origin, or no origin, is not affected.
    let other = raw_get(edge.proxy, "nope.handover.test").await.unwrap();
    assert!(other.starts_with("HTTP/1.1 530"), "{other}");

    edge.clear_origin(A).await;
    assert_eq!(via_proxy(&fresh_client(), edge.proxy).await.0, 200);
    let metrics = edge.scrape().await;
    assert_eq!(injected(&metrics, A, "reset"), 3, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_armed_while_a_request_waits_on_the_origin_resets_it() {
    let (edge, stalled) = EdgeBuilder::new().with_origin(Behaviour::Stall).await;
    let proxy = edge.proxy;
    let waiting = tokio::spawn(async move { raw_get(proxy, HOST).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while stalled.hits() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let armed_at = Instant::now();
    edge.arm_origin(A, json!({"reset": true, "for_ms": 60000}))
        .await;
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(armed_at.elapsed() < Duration::from_secs(2));
    let listed = edge.admin_result("origins").await;
    let left = listed[0]["reset"]["remaining_ms"].as_u64().unwrap();
    assert!(left > 50_000 && left <= 60_000, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_gives_a_522_after_the_connect_timeout() {
    let (edge, a) = EdgeBuilder::new()
        .connect_timeout("1s")
        .with_origin(Behaviour::Answer)
        .await;
    // A kept-alive client whose origin connection is held: not used either.
    let mut kept = KeepAlive::connect(edge.proxy).await;
    assert_eq!(kept.get().await, (200, Some("a".into())));
    let hits = a.hits();

    edge.arm_origin(A, json!({"blackhole": true})).await;
    for _ in 0..2 {
        let started = Instant::now();
        let (status, _) = kept.get().await;
        let took = started.elapsed();
        assert_eq!(status, 522);
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_secs(3),
            "522 after {took:?}"
        );
    }
    let resp = to_proxy(&fresh_client(), edge.proxy, HOST)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 522);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error_code"], 522);
    assert_eq!(a.hits(), hits, "nothing reaches a black-holed origin");

    edge.clear_origin(A).await;
    assert_eq!(kept.get().await, (200, Some("a".into())));
    let metrics = edge.scrape().await;
    assert_eq!(injected(&metrics, A, "blackhole"), 3, "{metrics}");
    let port = a.addr.port();
    assert_eq!(
        metric(
            &metrics,
            &format!("edge_proxy_requests_total{{origin=\"127.0.0.2:{port}\",status=\"522\"}}")
        ),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_blackhole_lifts_and_a_waiting_connect_goes_ahead() {
    let (edge, _a) = EdgeBuilder::new()
        .connect_timeout("5s")
        .with_origin(Behaviour::Answer)
        .await;
    let armed = edge
        .arm_origin(A, json!({"blackhole": true, "for_ms": 800}))
        .await;
    assert!(
        armed["result"]["blackhole"]["remaining_ms"]
            .as_u64()
            .unwrap()
            <= 800
    );
    let started = Instant::now();
    let (status, took) = timed(&fresh_client(), &edge).await;
    assert_eq!(
        status, 200,
        "the blackhole lifted before the connect timed out"
    );
    assert!(
        took >= Duration::from_millis(600) && started.elapsed() < Duration::from_secs(4),
        "answered after {took:?}"
    );
    assert_eq!(edge.admin_result("origins").await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_requests_are_400s_naming_the_field_and_arm_nothing() {
    let edge = EdgeBuilder::new().start();
    let cases = [
        ("127.0.0.2", r#"{"latency_ms": "fast"}"#, "latency_ms"),
        (
            "127.0.0.2",
            r#"{"latency_ms": 10, "jitter_ms": 20}"#,
            "jitter_ms",
        ),
        ("127.0.0.2", r#"{"reset": 1}"#, "reset"),
        (
            "127.0.0.2",
            r#"{"blackhole": true, "for_ms": -5}"#,
            "for_ms",
        ),
        ("127.0.0.2", r#"{"blackhole": true, "toxic": "x"}"#, "toxic"),
        ("127.0.0.2", r#"{}"#, "no fault"),
        ("shop.handover.test", r#"{"reset": true}"#, "ip"),
    ];
    for (ip, body, field) in cases {
        let resp = edge
            .admin(Method::POST, &format!("origins/{ip}/faults"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{ip} {body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["success"], false);
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    let not_json = edge
        .admin(Method::POST, "origins/127.0.0.2/faults")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        edge.admin_result("origins").await,
        json!([]),
        "nothing armed"
    );

    let api_token = reqwest::Client::new()
        .post(format!(
            "http://{}/admin/origins/127.0.0.2/faults",
            edge.api
        ))
        .bearer_auth(TOKEN)
        .body(r#"{"reset": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_token.status(),
        403,
        "the API token is not the admin token"
    );

    // Any IP may be armed, whether a record names it or not; DELETE of
    // every origin clears them all.
    edge.arm_origin("10.9.9.9", json!({"latency_ms": 5})).await;
    edge.arm_origin("::1", json!({"reset": true})).await;
    assert_eq!(
        edge.admin_result("origins").await.as_array().unwrap().len(),
        2
    );
    let one = edge.admin_result("origins/[::1]/faults").await;
    assert_eq!(one["origin"], "::1");
    assert_eq!(one["reset"]["remaining_ms"], serde_json::Value::Null);
    let cleared = edge.admin(Method::DELETE, "origins").send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(edge.admin_result("origins").await, json!([]));
}
