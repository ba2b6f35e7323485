//! Event-store benchmark: append throughput and subscriber lag, for any
//! backend URL. Prints one tab-separated result line per measurement (read
//! by `scripts/bench-store.sh`).
//!
//! ```text
//! store_bench URL throughput COUNT      concurrent appends (group commit), then one at a time
//! store_bench URL lag RATE SECONDS      appends paced at RATE/s; a second handle subscribes;
//!                                       lag from append start and from commit (ack) to seen
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use example_app::store::{self, EventStore, NewEvent, StoreOptions, StoreUrl, Subscription};
use futures::future::join_all;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn event(tag: &str, i: u64, payload: String) -> NewEvent {
    NewEvent {
        kind: "BenchEvent".into(),
        key: format!("{tag}-{i}"),
        payload,
    }
}

async fn open(url: &str) -> Result<Arc<dyn EventStore>, Box<dyn std::error::Error>> {
    Ok(store::open(&StoreUrl::parse(url)?, StoreOptions::default()).await?)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e6
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tag = format!("b{}", now_ns());
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [url, "throughput", count] => {
            let count: u64 = count.parse()?;
            let store = open(url).await?;
            let start = Instant::now();
            let mut i = 0;
            while i < count {
                let end = (i + 1024).min(count);
                for r in join_all((i..end).map(|k| store.append(event(&tag, k, "{}".into())))).await
                {
                    r?;
                }
                i = end;
            }
            let secs = start.elapsed().as_secs_f64();
            let s = store.stats();
            println!(
                "throughput_batched\t{:.0}\tevents/s\t(commits {} for {} appends, max batch {})",
                count as f64 / secs,
                s.commits,
                s.appends,
                s.max_batch
            );
            let single = (count / 20).clamp(100, 2000);
            let start = Instant::now();
            for k in 0..single {
                store.append(event(&tag, count + k, "{}".into())).await?;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "throughput_single\t{:.0}\tevents/s\t(one append at a time, {:.2} ms each)",
                single as f64 / secs,
                secs * 1000.0 / single as f64
            );
        }
        [url, "lag", rate, seconds] => {
            let rate: f64 = rate.parse()?;
            let seconds: f64 = seconds.parse()?;
            let total = (rate * seconds) as u64;
            let writer = open(url).await?;
            let reader = open(url).await?;
            let start_pos = reader.head().await?;
            // Per event: when its append started, when it was acknowledged
            // (committed), and when the subscriber saw it. Bounded: RATE x SECONDS.
            let acked: Arc<Vec<AtomicU64>> =
                Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
            let prefix = format!("{tag}-");
            let collector = tokio::spawn(async move {
                let mut sub = Subscription::new(reader, start_pos);
                let mut seen = vec![(0u64, 0u64); total as usize];
                let mut count = 0u64;
                let deadline = Instant::now() + Duration::from_secs_f64(seconds + 60.0);
                while count < total && Instant::now() < deadline {
                    if let Ok(Ok(events)) =
                        tokio::time::timeout(Duration::from_millis(500), sub.next()).await
                    {
                        let now = now_ns();
                        for e in events {
                            let i = e
                                .key
                                .strip_prefix(&prefix)
                                .and_then(|k| k.parse::<usize>().ok());
                            if let (Some(i), Ok(sent)) = (i, e.payload.parse::<u64>()) {
                                if i < seen.len() {
                                    seen[i] = (sent, now);
                                    count += 1;
                                }
                            }
                        }
                    }
                }
                seen
            });
            let t0 = Instant::now();
            let mut tasks = Vec::with_capacity(total as usize);
            for i in 0..total {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let (w, tag, acked) = (writer.clone(), tag.clone(), acked.clone());
                tasks.push(tokio::spawn(async move {
                    let r = w
                        .append(event(&tag, i, now_ns().to_string()))
                        .await
                        .map(|_| ());
                    acked[i as usize].store(now_ns(), Ordering::Relaxed);
                    r
                }));
            }
            let mut failed = 0;
            for t in tasks {
                if !matches!(t.await, Ok(Ok(()))) {
                    failed += 1;
                }
            }
            let seen = collector.await?;
            let mut from_start = Vec::with_capacity(seen.len());
            let mut from_commit = Vec::with_capacity(seen.len());
            for (i, (sent, at)) in seen.iter().enumerate() {
                if *at == 0 {
                    continue;
                }
                from_start.push(at.saturating_sub(*sent));
                from_commit.push(at.saturating_sub(acked[i].load(Ordering::Relaxed)));
            }
            from_start.sort_unstable();
            from_commit.sort_unstable();
            println!(
                "lag\t{}\tdelivered\t{}\tfailed\t{:.2}\tp50_ms\t{:.2}\tp99_ms\t{:.2}\tmax_ms\t{:.2}\tcommit_p50_ms\t{:.2}\tcommit_p99_ms",
                from_start.len(),
                failed,
                percentile(&from_start, 0.5),
                percentile(&from_start, 0.99),
                percentile(&from_start, 1.0),
                percentile(&from_commit, 0.5),
                percentile(&from_commit, 0.99),
            );
        }
        _ => {
            eprintln!("usage: store_bench URL throughput COUNT | store_bench URL lag RATE SECONDS");
            std::process::exit(2);
        }
    }
    Ok(())
}
