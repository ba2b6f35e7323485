//! Appends `OrderPlaced` events straight to a store until it holds `COUNT`
//! orders: how the benchmark gets an instance to 1,000,000 orders quickly.
//!
//! `cargo run --release -p example-app --example fill_store -- STORE_URL COUNT`

use std::time::Instant;

use example_app::domain::Event;
use example_app::projection::format_time_us;
use example_app::store::{self, StoreOptions, StoreUrl};
use futures::future::try_join_all;
use handover_contract::{LineItem, Order};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: fill_store STORE_URL COUNT");
        std::process::exit(2);
    };
    let count: u64 = count.parse()?;
    let store = store::open(&StoreUrl::parse(&url)?, StoreOptions::default()).await?;
    let mut have = 0u64;
    let mut after = 0;
    loop {
        let batch = store.read_after(after, 100_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        have += batch.iter().filter(|e| e.kind == "OrderPlaced").count() as u64;
    }
    let start = Instant::now();
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut next = have;
    while next < count {
        let end = (next + 4096).min(count);
        let events = (next..end).map(|i| {
            Event::OrderPlaced(Order {
                id: format!("fill-{i:08}"),
                user_id: format!("u-{:04}", i % 60 + 1),
                line_items: vec![
                    LineItem {
                        product: "widget".into(),
                        quantity: (i % 1000) as u32 + 1,
                    },
                    LineItem {
                        product: "gadget".into(),
                        quantity: 1,
                    },
                ],
                placed_at: format_time_us(now_us + i as i64),
                placed_by: "fill".into(),
            })
            .to_new_event()
        });
        try_join_all(events.map(|e| store.append(e))).await?;
        next = end;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "appended {} orders in {:.1}s ({:.0}/s); store holds {count}",
        count.saturating_sub(have),
        secs,
        count.saturating_sub(have) as f64 / secs.max(1e-9)
    );
    Ok(())
}
