//! The end of the pipeline: records in; ack log, aggregate, per-second lines
//! and events out. Runs as one task so the aggregate needs no locks; the
//! totals a caller polls are published after every batch.

use crate::ack_log::AckLog;
use crate::aggregate::{Aggregate, Second};
use crate::clock::Clock;
use crate::live::Shared;
use crate::printer;
use crate::record::Record;
use crate::{Error, Progress};
use handover_cli::Style;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where progress goes, with the style that suits that stream.
pub struct Output {
    out: Box<dyn Write + Send>,
    style: Style,
}

impl Output {
    pub fn new(progress: Progress) -> Option<Self> {
        match progress {
            Progress::Off => None,
            Progress::Stderr => Some(Output {
                style: Style::stderr(),
                out: Box::new(std::io::stderr()),
            }),
            Progress::Stdout => Some(Output {
                style: Style::stdout(),
                out: Box::new(std::io::stdout()),
            }),
        }
    }
}

/// What the collector hands back at the end.
pub struct Collected {
    pub aggregate: Aggregate,
    pub ack_lines: Option<u64>,
}

pub async fn collect(
    mut rx: mpsc::Receiver<Record>,
    clock: Clock,
    rate: f64,
    shared: Arc<Shared>,
    mut ack: Option<AckLog>,
    mut output: Option<Output>,
) -> Result<Collected, Error> {
    let mut agg = Aggregate::default();
    agg.start_at(clock.t0_unix_ns());
    let mut ack_error: Option<Error> = None;
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::from_std(clock.t0() + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let slot_ns = (1e9 / rate) as u64;
    let mut batch = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    break;
                }
                for r in batch.drain(..) {
                    if let (Some(log), None) = (ack.as_mut(), &ack_error) {
                        if let Err(e) = log.write(&r) {
                            tracing::error!(error = %e, "ack log write failed; no more lines will be written");
                            ack_error = Some(e);
                        }
                    }
                    agg.record(&r);
                }
                publish(&agg, &shared);
                print_events(&mut agg, output.as_mut(), &clock);
            }
            _ = ticker.tick() => {
                let now = clock.now_ns();
                let ended = shared.sending_ended_ns.load(Ordering::Relaxed);
                let full = ended == 0 || now <= ended.saturating_add(slot_ns);
                let sec = close_second(&mut agg, &shared, now, full);
                publish_second(&agg, &sec, &shared);
                print_events(&mut agg, output.as_mut(), &clock);
                if let Some(o) = output.as_mut() {
                    let _ = printer::second(&mut o.out, &o.style, &sec);
                    let _ = o.out.flush();
                }
            }
        }
    }
    // The last, partial second (not part of the rate statistics).
    let sec = close_second(&mut agg, &shared, clock.now_ns(), false);
    print_events(&mut agg, output.as_mut(), &clock);
    if let Some(o) = output.as_mut() {
        if sec.sent + sec.ok + sec.rejected + sec.indeterminate + sec.missed > 0 {
            let _ = printer::second(&mut o.out, &o.style, &sec);
        }
    }
    agg.finish();
    print_events(&mut agg, output.as_mut(), &clock);
    publish(&agg, &shared);
    if let Some(e) = ack_error {
        return Err(e);
    }
    let ack_lines = match ack {
        Some(log) => Some(log.finish()?),
        None => None,
    };
    Ok(Collected {
        aggregate: agg,
        ack_lines,
    })
}

/// Ends the current second with the pacer's and workers' counters as they are now.
fn close_second(agg: &mut Aggregate, shared: &Shared, now_ns: u64, full: bool) -> Second {
    agg.close_second(
        now_ns,
        shared.sent.load(Ordering::Relaxed),
        shared.missed.load(Ordering::Relaxed),
        shared.in_flight.load(Ordering::Relaxed),
        full,
    )
}

fn publish(agg: &Aggregate, shared: &Shared) {
    if let Ok(mut live) = shared.replies.lock() {
        live.ok = agg.ok;
        live.rejected = agg.rejected;
        live.indeterminate = agg.indeterminate;
        if live.by_instance != agg.by_instance {
            live.by_instance.clone_from(&agg.by_instance);
        }
        live.last_instance.clone_from(&agg.last_instance);
        live.last_ok_ns = agg.last_ok_ns;
    }
}

/// The once-a-second figures of [`crate::Live`]: kept off the per-batch
/// path, where they would cost a percentile walk per batch.
fn publish_second(agg: &Aggregate, sec: &Second, shared: &Shared) {
    let handover = agg.handover();
    if let Ok(mut live) = shared.replies.lock() {
        live.p50_us = (sec.p50_ms * 1000.0) as u64;
        live.p99_us = (sec.p99_ms * 1000.0) as u64;
        live.max_gap_ns = agg.max_gap_ns();
        live.first_new_ns = handover.as_ref().map(|h| h.first_new_ns);
        live.last_old_ns = handover.as_ref().map(|h| h.last_old_ns);
    }
}

fn print_events(agg: &mut Aggregate, output: Option<&mut Output>, clock: &Clock) {
    let events = agg.take_events();
    if events.is_empty() {
        return;
    }
    for ev in &events {
        tracing::info!(event = ?ev, "instance event");
    }
    if let Some(o) = output {
        for ev in &events {
            let _ = printer::event(&mut o.out, &o.style, ev, clock.t0_unix_ns());
        }
        let _ = o.out.flush();
    }
}
