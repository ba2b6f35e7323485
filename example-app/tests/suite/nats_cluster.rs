//! A 3-node JetStream cluster with an R3 stream under load: the stream's
//! leader is killed and restarted (appends go on, nothing acknowledged is
//! lost), then two nodes at once (no quorum: 503 and an unhealthy
//! `/health` until they are back).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::nats_servers::NatsServers;
use super::util::*;

/// Orders posted by a few tasks until cancelled: the acknowledged ids and
/// how many 503s came back.
struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    unavailable: Arc<AtomicU64>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(app: &AppProc, tasks: usize) -> Load {
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let unavailable = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let c = client();
        let tasks = (0..tasks)
            .map(|t| {
                let (c, url) = (c.clone(), app.url("/orders"));
                let (acked, unavailable, stop) =
                    (Arc::clone(&acked), Arc::clone(&unavailable), stop.clone());
                tokio::spawn(async move {
                    for i in 0..1_000_000 {
                        if stop.is_cancelled() {
                            return;
                        }
                        let id = format!("nc-{t}-{i}");
                        let r = send(c.post(&url).json(&order_body(&id, "u-0005", 1)))
                            .await
                            .unwrap_or_else(|e| panic!("{id}: {e}"));
                        match r.status {
                            200 | 201 => acked.lock().unwrap().push(id),
                            503 => {
                                unavailable.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            s => panic!("{id}: unexpected {s} {}", r.body),
                        }
                    }
                })
            })
            .collect();
        Load {
            acked,
            unavailable,
            stop,
            tasks,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` further orders are acknowledged.
    async fn progress(&self, more: usize, what: &str) {
        let want = self.acked() + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acked() < want {
            assert!(
                Instant::now() < deadline,
                "{what}: load stalled at {}",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> (Vec<String>, u64) {
        self.stop.cancel();
        for t in self.tasks {
            t.await.expect("load task");
        }
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.unavailable.load(Ordering::Relaxed))
    }
}

/// Waits until `/health` answers `status`.
async fn health_becomes(app: &AppProc, status: u16, what: &str) -> Reply {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = get_json(&c, app, "/health").await;
        if h.status == status {
            return h;
        }
        assert!(Instant::now() < deadline, "{what}: /health {}", h.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_loses_a_leader_then_quorum_and_no_ack() {
    let servers = NatsServers::cluster();
    let url = servers.store_url();
    let stream = url.rsplit_once('/').expect("stream").1.to_string();
    let a = AppProc::start(&url, "a", &["--append-timeout", "2s"]);
    let load = Load::start(&a, 6);
    load.progress(200, "before").await;

    // The leader dies: a new one is elected from the two replicas, and
    // appends go on (some may time out meanwhile: 503, never lost).
    let leader = servers.kill(&format!("leader:{stream}"));
    load.progress(200, "after the leader died").await;
    servers.restart(&leader);
    load.progress(200, "after it came back").await;

    // Two of three down: no quorum, so no publish ack: 503, unhealthy.
    let others: Vec<String> = ["1", "2", "3"]
        .into_iter()
        .filter(|n| *n != leader)
        .map(String::from)
        .collect();
    for n in &others {
        servers.kill(n);
    }
    let h = health_becomes(&a, 503, "no quorum").await;
    assert_ne!(h.body["checks"]["store"], "ok", "{}", h.body);
    let r = post_order(&client(), &a, &order_body("no-quorum", "u-0005", 1)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "store_unavailable");
    for n in &others {
        servers.restart(n);
    }
    health_becomes(&a, 200, "quorum back").await;
    load.progress(200, "after quorum came back").await;
    let (acked, unavailable) = load.finish().await;

    let store = open_store(&url).await;
    let events = all_events(&*store).await;
    let stored: HashSet<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(stored.len(), events.len(), "an order stored twice");
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged orders lost ({unavailable} 503s): {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    let listed: HashSet<String> = list_ndjson(&client(), &a)
        .await
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert!(
        acked.iter().all(|id| listed.contains(id)),
        "A's projection misses acknowledged orders"
    );
}
