//! The HTTP surface on a SQLite store: listings, health, metrics, shutdown.

use std::time::{Duration, Instant};

use handover_contract::{Company, Health, Order, User};
use nix::sys::signal::Signal;

use super::sqlite::temp_store;
use super::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_companies_and_orders_by_id() {
    let (_dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &[]);
    let c = client();
    let users: Vec<User> =
        serde_json::from_value(get_json(&c, &a, "/users").await.body).expect("users");
    assert!(users.len() >= 50);
    assert_eq!(users[0].id, "u-0001");
    let companies: Vec<Company> =
        serde_json::from_value(get_json(&c, &a, "/companies").await.body).expect("companies");
    assert!(companies.len() >= 2);
    assert!(users
        .iter()
        .all(|u| companies.iter().any(|co| co.id == u.company_id)));

    let created = post_order(&c, &a, &order_body("o-1", "u-0007", 3)).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.instance.as_deref(), Some("a"));
    let order: Order = serde_json::from_value(created.body.clone()).expect("order");
    assert_eq!(order.placed_by, "a");
    assert_eq!(order.user_id, "u-0007");
    assert!(chrono::DateTime::parse_from_rfc3339(&order.placed_at).is_ok());
    // Read-your-writes: the very next read on this instance sees it.
    let got = get_json(&c, &a, "/orders/o-1").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_stream_in_position_order_as_json_and_ndjson() {
    let (_dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &[]);
    let c = client();
    let empty = get_json(&c, &a, "/orders").await;
    assert_eq!(empty.body, serde_json::json!([]));
    // More than one serialization chunk, posted one after another.
    let n = 2500;
    let futs = (0..n).map(|i| {
        let c = c.clone();
        let a = &a;
        async move {
            let r = post_order(&c, a, &order_body(&format!("l-{i:05}"), "u-0001", 1)).await;
            assert_eq!(r.status, 201);
            r.body["id"].as_str().expect("id").to_string()
        }
    });
    // 8 at a time keeps the machine responsive.
    let mut ids = Vec::new();
    let mut futs = futs.collect::<Vec<_>>();
    while !futs.is_empty() {
        let rest = futs.split_off(futs.len().min(8));
        ids.extend(futures::future::join_all(futs).await);
        futs = rest;
    }
    let nd = list_ndjson(&c, &a).await;
    assert_eq!(nd.len(), n);
    let json: Vec<Order> =
        serde_json::from_value(get_json(&c, &a, "/orders").await.body).expect("array");
    assert!(json == nd, "JSON and NDJSON listings differ");
    // Position order: the order in which the store committed them.
    let store = open_store(&url).await;
    let events: Vec<String> = all_events(&*store)
        .await
        .into_iter()
        .filter(|e| e.kind == "OrderPlaced")
        .map(|e| e.key)
        .collect();
    let listed: Vec<String> = nd.into_iter().map(|o| o.id).collect();
    assert!(listed == events, "listing is not in position order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_do_not_count_as_requests() {
    let (_dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &[]);
    let c = client();
    let h0: Health =
        serde_json::from_value(get_json(&c, &a, "/health").await.body).expect("health");
    assert!(h0.healthy);
    assert_eq!(h0.instance, "a");
    assert_eq!(h0.requests_total, 0);
    assert_eq!(h0.last_request_at, None);
    assert_eq!(h0.lag, 0);
    assert_eq!(h0.checks.store, "ok");
    for _ in 0..5 {
        assert_eq!(get_json(&c, &a, "/health").await.status, 200);
        let m = send(c.get(a.url("/metrics"))).await.expect("metrics");
        assert_eq!(m.status, 200);
        assert_eq!(m.instance.as_deref(), Some("a"));
    }
    assert_eq!(
        post_order(&c, &a, &order_body("h-1", "u-0001", 1))
            .await
            .status,
        201
    );
    assert_eq!(get_json(&c, &a, "/users").await.status, 200);
    let h1: Health =
        serde_json::from_value(get_json(&c, &a, "/health").await.body).expect("health");
    assert_eq!(h1.requests_total, 2);
    assert_eq!(h1.in_flight, 0);
    assert!(h1.last_request_at.is_some());
    assert_eq!(h1.applied, h1.head);
    assert_eq!(h1.applied, h0.applied + 1);
    let text = c
        .get(a.url("/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(
        text.contains(
            "handover_http_requests_total{method=\"POST\",route=\"/orders\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("handover_http_request_duration_seconds_bucket{method=\"POST\",route=\"/orders\",le=\"+Inf\"} 1"));
    assert!(text.contains(&format!("handover_applied_position {}", h1.applied)));
    assert!(text.contains("handover_lag_events 0"));
}

/// Posts order `id`, which the server holds for `delay_ms` (test hook), and
/// returns once it is in flight (polled on a separate connection).
async fn slow_order_in_flight(
    a: &AppProc,
    id: &str,
    delay_ms: &'static str,
) -> tokio::task::JoinHandle<Result<Reply, reqwest::Error>> {
    let slow = tokio::spawn(send(
        client()
            .post(a.url("/orders"))
            .header(example_app::api::TEST_DELAY_HEADER, delay_ms)
            .json(&order_body(id, "u-0001", 1)),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(&client(), a, "/health").await.body["in_flight"] != 1 {
        assert!(Instant::now() < deadline, "slow request never in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    slow
}

/// SIGTERM with a slow request in flight: it completes 2xx, the listener
/// closes, /health said draining, the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_request_and_exits_0() {
    let (_dir, url) = temp_store();
    let mut a = AppProc::start(&url, "a", &["--test-hooks"]);
    let slow = slow_order_in_flight(&a, "slow-1", "3000").await;
    a.signal(Signal::SIGTERM);
    let reply = slow.await.expect("join").expect("slow request");
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.instance.as_deref(), Some("a"));
    let status = a.wait_exit(Duration::from_secs(30)).expect("exited");
    assert_eq!(status.code(), Some(0));
    // The order it acknowledged is in the store.
    let store = open_store(&url).await;
    assert!(all_events(&*store).await.iter().any(|e| e.key == "slow-1"));
}

/// After SIGTERM new connections are refused while the slow one finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_and_reports_draining() {
    let (_dir, url) = temp_store();
    let mut a = AppProc::start(&url, "a", &["--test-hooks"]);
    // Keep one connection busy so the server stays up while draining.
    let slow = slow_order_in_flight(&a, "slow-2", "2000").await;
    a.signal(Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // A fresh client: no pooled connection to reuse.
        let fresh = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        if fresh.get(a.url("/health")).send().await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(slow.await.expect("join").expect("reply").status, 201);
    assert_eq!(
        a.wait_exit(Duration::from_secs(30)).and_then(|s| s.code()),
        Some(0)
    );
}

/// In process: `/health` is 503 while the projection lags beyond the
/// threshold, 200 once caught up, and reports draining after shutdown begins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_lagging_or_draining() {
    use std::sync::Arc;

    use example_app::api::{ApiConfig, App};
    use example_app::projection::Projection;
    use example_app::store::NewEvent;

    let (_dir, url) = temp_store();
    let store = open_store(&url).await;
    for i in 0..20 {
        store
            .append(NewEvent {
                kind: "CompanyRegistered".into(),
                key: format!("c-{i}"),
                payload: format!("{{\"id\":\"c-{i}\",\"name\":\"Co {i}\"}}"),
            })
            .await
            .expect("append");
    }
    let projection = Arc::new(Projection::new());
    let config = ApiConfig {
        max_lag: 5,
        ..ApiConfig::default()
    };
    let app = Arc::new(
        App::new("lagger".into(), store.clone(), projection.clone(), config).expect("app"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(example_app::server::serve(
        listener,
        app.clone(),
        Box::pin(async move {
            let _ = stop_rx.await;
        }),
        Duration::from_secs(10),
    ));
    let c = client();
    let r = send(c.get(format!("{base}/health"))).await.expect("health");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["healthy"], false);
    assert_eq!(r.body["lag"], 20);
    assert_eq!(r.instance.as_deref(), Some("lagger"));

    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(example_app::follower::follow(
        store.clone(),
        projection.clone(),
        cancel.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = send(c.get(format!("{base}/health"))).await.expect("health");
        if r.status == 200 {
            assert_eq!(r.body["lag"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let companies = send(c.get(format!("{base}/companies")))
        .await
        .expect("companies");
    assert_eq!(companies.body.as_array().map(Vec::len), Some(20));

    stop_tx.send(()).expect("stop");
    server.await.expect("join").expect("clean shutdown");
    let h = app.health();
    assert!(h.draining && !h.healthy, "{h:?}");
    cancel.cancel();
}

/// Reads one HTTP/1.1 response with a `Content-Length` body: its status and
/// whether it says `Connection: close`.
fn read_response(r: &mut impl std::io::BufRead) -> std::io::Result<(u16, bool)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("status line {line:?}")))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse().map_err(std::io::Error::other)?;
        }
        close |= l == "connection: close";
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok((status, close))
}

/// A body refused before it was read (415 for a wrong content type) is
/// drained first, so the client's next request on the same connection is
/// answered. The fuzz test found the connection closed under it otherwise.
#[test]
fn a_refused_body_leaves_the_connection_usable() {
    use std::io::{BufReader, Write};

    let (_dir, url) = temp_store();
    let a = AppProc::start(&url, "a", &[]);
    let addr = a.base.trim_start_matches("http://").to_string();
    for (content_type, size, want) in [
        ("text/plain", 512 * 1024, 415),
        ("application/json", 512 * 1024, 413),
    ] {
        let stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let head = format!(
            "POST /orders HTTP/1.1\r\nHost: a\r\nContent-Type: {content_type}\r\nContent-Length: {size}\r\n\r\n"
        );
        // Written from another thread: a server that answers before reading
        // must not block the test.
        let sender = std::thread::spawn(move || {
            writer.write_all(head.as_bytes())?;
            writer.write_all(&vec![b'x'; size])?;
            writer.flush()?;
            Ok::<_, std::io::Error>(writer)
        });
        let mut reader = BufReader::new(stream);
        let (status, close) = read_response(&mut reader).expect("first reply");
        assert_eq!((status, close), (want, false), "{content_type}");
        let mut writer = sender.join().expect("join").expect("body sent whole");
        writer
            .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("second request");
        let (status, _) = read_response(&mut reader).expect("the connection was kept");
        assert_eq!(status, 200, "{content_type}");
    }
}
