//! Benchmark helper for `scripts/bench-reconcile.sh`.
//!
//! `reconcile_bench serve --orders N --acks FILE`: writes an ack log of N
//! acknowledged orders, then serves the same N orders as NDJSON on loopback
//! (`/health` already caught up), printing `{"event":"listening","addr":…}`.
//! `reconcile_bench run --acks FILE --app URL`: times the library's
//! `reconcile` against it and prints the counts, the time and the peak RSS of
//! this (the reconciling) process.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use clap::Parser;
use handover_contract::order::line_items_digest;
use handover_contract::{AckRecord, Health, LineItem, Order, Outcome};
use migrator::reconcile::{reconcile, Progress, ReconcileOptions};

#[derive(Parser)]
enum Cmd {
    /// Write the ack log and serve the matching orders.
    Serve {
        #[arg(long, default_value_t = 1_000_000)]
        orders: u64,
        #[arg(long)]
        acks: PathBuf,
    },
    /// Reconcile and report time and peak memory.
    Run {
        #[arg(long)]
        acks: PathBuf,
        #[arg(long)]
        app: url::Url,
    },
}

fn items(i: u64) -> Vec<LineItem> {
    (0..1 + i % 3)
        .map(|k| LineItem {
            product: format!("product-{}", (i + k) % 97),
            quantity: (1 + (i + k) % 9) as u32,
        })
        .collect()
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// User + system CPU time of this process (all threads), from /proc; the
/// clock tick is 100 Hz on Linux.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that closes the command name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() {
    match Cmd::parse() {
        Cmd::Serve { orders, acks } => serve(orders, acks).await,
        Cmd::Run { acks, app } => run(acks, app).await,
    }
}

async fn serve(n: u64, acks: PathBuf) {
    let run = "bench-7f3a9c";
    let mut log = std::io::BufWriter::new(std::fs::File::create(&acks).unwrap());
    let mut body = Vec::with_capacity(n as usize * 160);
    let t0 = 1_700_000_000_000_000_000u64;
    for i in 0..n {
        let id = format!("{run}-{i:010}");
        let user_id = format!("user-{}", i % 1000);
        let line_items = items(i);
        let ack = AckRecord {
            id: id.clone(),
            due_ns: t0 + i * 100_000,
            done_ns: t0 + i * 100_000 + 1_500_000,
            outcome: Outcome::Ok,
            status: Some(201),
            instance: Some(if i < n / 2 { "a" } else { "b" }.into()),
            latency_us: 1500,
            user_id: Some(user_id.clone()),
            items_digest: Some(line_items_digest(&line_items)),
        };
        serde_json::to_writer(&mut log, &ack).unwrap();
        log.write_all(b"\n").unwrap();
        let order = Order {
            id,
            user_id,
            line_items,
            placed_at: "2024-01-01T00:00:00.000000Z".into(),
            placed_by: if i < n / 2 { "a" } else { "b" }.into(),
        };
        serde_json::to_writer(&mut body, &order).unwrap();
        body.push(b'\n');
    }
    log.flush().unwrap();
    let body = Bytes::from(body);
    let health = Health::idle("bench", n, n);
    let app = Router::new()
        .route("/health", get(move || async move { axum::Json(health) }))
        .route(
            "/orders",
            get(move || {
                let body = body.clone();
                async move {
                    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..body.len())
                        .step_by(64 * 1024)
                        .map(|at| Ok(body.slice(at..(at + 64 * 1024).min(body.len()))))
                        .collect();
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/x-ndjson")
                        .body(Body::from_stream(futures::stream::iter(chunks)))
                        .unwrap()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    println!(r#"{{"event":"listening","addr":"{addr}"}}"#);
    std::io::stdout().flush().unwrap();
    axum::serve(listener, app).await.unwrap();
}

async fn run(acks: PathBuf, app: url::Url) {
    let started = Instant::now();
    let opts = ReconcileOptions {
        progress: Some(std::sync::Arc::new(move |p: &Progress| {
            eprintln!(
                "{:>7.3} s wall {:>6.2} s cpu  {p:?}",
                started.elapsed().as_secs_f64(),
                cpu_seconds()
            );
        })),
        ..ReconcileOptions::default()
    };
    let r = reconcile(&acks, &app, &opts).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "acked={} stored={} ok={} lost={} unexpected={} duplicated={} mismatched={} seconds={secs:.3} cpu_seconds={:.2} peak_rss_mib={:.1}",
        r.acked_total,
        r.stored_total,
        r.ok,
        r.lost,
        r.unexpected,
        r.duplicated,
        r.mismatched,
        cpu_seconds(),
        peak_rss_mib()
    );
}
