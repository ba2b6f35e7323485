//! `idle_timeout` decides which origin a kept-alive client connection uses
//! after a record change (blind spot 8 of issue 11).

use crate::util::*;
use std::time::{Duration, Instant};

/// A long window, so a connection's own moment in it almost surely lies far
/// ahead: with "1h" the chance that a busy connection moves within the few
/// seconds of this test is below 1 in 1,000.
const LONG_WINDOW: &str = "1h";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_re_resolves_and_a_busy_one_keeps_its_origin() {
    let idle_timeout = Duration::from_millis(800);
    let (edge, _a, _b) = EdgeBuilder::new()
        .propagation(LONG_WINDOW)
        .idle_timeout("800ms")
        .with_origins(Behaviour::Answer, Behaviour::Answer)
        .await;
    let mut busy = KeepAlive::connect(edge.proxy).await;
    let mut idle = KeepAlive::connect(edge.proxy).await;
    assert_eq!(busy.get().await, (200, Some("a".into())));
    assert_eq!(idle.get().await, (200, Some("a".into())));

    patch(&edge, "127.0.0.3").await;
    // Busy: a request well within idle_timeout of the last, for longer than
    // idle_timeout in all — it stays on the old origin (its moment in the
    // hour-long window has not come).
    let quiet_since = Instant::now();
    while quiet_since.elapsed() < idle_timeout + Duration::from_millis(400) {
        assert_eq!(
            busy.get().await,
            (200, Some("a".into())),
            "a busy connection left the old origin before its moment"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle past idle_timeout: the next request takes the record as it is now.
    assert_eq!(
        idle.get().await,
        (200, Some("b".into())),
        "a connection idle past idle_timeout must re-resolve the record"
    );
    // Once it re-resolved, it is busy on the new origin and stays there.
    for _ in 0..5 {
        assert_eq!(idle.get().await, (200, Some("b".into())));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And a busy connection that idles past the timeout moves too.
    tokio::time::sleep(idle_timeout + Duration::from_millis(200)).await;
    assert_eq!(busy.get().await, (200, Some("b".into())));
}
