//! The workers: long-lived tasks, one per connection, each taking the next
//! released slot, sending it and turning the reply into a [`Record`].
//!
//! Long-lived workers (rather than a task per request) keep the per-request
//! cost to the exchange itself. Their number grows with demand (the pacer
//! adds one when slots wait and no worker is idle) up to a cap, so a fast
//! server is driven over few connections (cheapest) and a slow one gets as
//! many as it needs, never a connection storm: beyond the cap slots queue,
//! their latency measured from the due time. A fast run starts with
//! [`Workers::dial_ahead`] of them already connected.

use crate::clock::Clock;
use crate::live::Shared;
use crate::record::Record;
use crate::transport::{Conn, Transport};
use crate::workload::{Plan, Scratch};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, Notify};

/// A schedule slot handed to the workers.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub seq: u64,
    pub due_ns: u64,
    /// When the pacer released it: its timeout runs from here.
    pub released: Instant,
}

/// The released slots not yet taken: many workers take, the pacer adds.
/// Bounded by the in-flight cap, which the pacer checks before adding.
#[derive(Debug, Default)]
pub struct SlotQueue {
    slots: Mutex<VecDeque<Slot>>,
    ready: Notify,
    closed: AtomicBool,
    /// Workers waiting for a slot: the pacer adds workers when the backlog
    /// outgrows them.
    idle: AtomicUsize,
}

impl SlotQueue {
    pub fn push(&self, slot: Slot) {
        match self.slots.lock() {
            Ok(mut q) => q.push_back(slot),
            Err(p) => p.into_inner().push_back(slot),
        }
        self.ready.notify_one();
    }

    /// No more slots will come; workers finish what is queued, then stop.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_waiters();
    }

    /// Slots waiting for a worker.
    pub fn len(&self) -> usize {
        match self.slots.lock() {
            Ok(q) => q.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Workers currently waiting for a slot.
    pub fn idle(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }

    fn pop(&self) -> Option<Slot> {
        match self.slots.lock() {
            Ok(mut q) => q.pop_front(),
            Err(p) => p.into_inner().pop_front(),
        }
    }

    /// The next slot, or `None` once closed and drained.
    pub async fn next(&self) -> Option<Slot> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Registered before looking, so a push in between is not lost.
            notified.as_mut().enable();
            if let Some(slot) = self.pop() {
                return Some(slot);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            self.idle.fetch_add(1, Ordering::Relaxed);
            notified.await;
            self.idle.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Everything a worker needs, shared.
pub struct Context {
    pub transport: Arc<Transport>,
    pub plan: Arc<Plan>,
    pub clock: Clock,
    pub shared: Arc<Shared>,
    pub queue: Arc<SlotQueue>,
}

/// One worker: its own connection, slots until the queue closes.
pub async fn work(cx: Arc<Context>, tx: mpsc::Sender<Record>, mut conn: Conn) {
    let mut scratch = Scratch::default();
    while let Some(slot) = cx.queue.next().await {
        if let Some(record) = send(&cx, &mut conn, &mut scratch, slot).await {
            let _ = tx.send(record).await;
        }
        cx.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends one slot. `None`: its timeout ran out while it waited for a free
/// worker, so it was never sent (counted as missed, no ack line: the server
/// cannot have it).
async fn send(cx: &Context, conn: &mut Conn, scratch: &mut Scratch, slot: Slot) -> Option<Record> {
    let deadline = slot.released + cx.transport.timeout();
    if Instant::now() >= deadline {
        cx.shared.missed.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let req = cx.plan.request(slot.seq, scratch);
    cx.shared.sent.fetch_add(1, Ordering::Relaxed);
    cx.shared
        .last_sent_ns
        .fetch_max(cx.clock.now_ns(), Ordering::Relaxed);
    let (sent, reply) = cx.transport.exchange(conn, &req, deadline).await;
    Some(Record {
        id: req.id,
        due_ns: slot.due_ns,
        sent_ns: cx.clock.unix_ns(sent),
        done_ns: cx.clock.now_ns(),
        outcome: cx.plan.outcome(reply.status),
        status: reply.status,
        instance: reply.instance,
        user_id: req.user_id,
        items_digest: req.items_digest,
    })
}

/// The worker set, grown on demand up to `max`.
pub struct Workers {
    cx: Arc<Context>,
    tx: mpsc::Sender<Record>,
    spawned: usize,
    max: usize,
}

impl Workers {
    /// Fewest workers to start with; the rest come when slots wait.
    pub const INITIAL: usize = 4;

    /// How many connections a run at `rate` dials before its clock
    /// starts: what it keeps in flight at a 2 ms reply, when that is more
    /// than [`Workers::INITIAL`]. Grown from 4 as slots queued instead,
    /// each new worker dialled (and the proxy behind it dialled the origin)
    /// while its slot waited: the first 50 ms of a 10,000/s run had replies
    /// of up to 42 ms. None at lower rates, where a worker dials on its
    /// first slot: a connection dialled ahead can sit idle until a server's
    /// idle timeout closes it just as the first request goes out.
    pub fn dial_ahead(rate: f64) -> usize {
        let in_flight = (rate * 0.002).ceil();
        if in_flight.is_finite() && in_flight > Self::INITIAL as f64 {
            in_flight as usize
        } else {
            0
        }
    }

    /// No worker yet: [`Workers::grow_to`] starts them.
    pub fn new(cx: Arc<Context>, tx: mpsc::Sender<Record>, max: usize) -> Self {
        Workers {
            cx,
            tx,
            spawned: 0,
            max,
        }
    }

    /// The queue the workers take slots from.
    pub fn queue(&self) -> &Arc<SlotQueue> {
        &self.cx.queue
    }

    pub fn grow_to(&mut self, n: usize) {
        while self.spawned < n.min(self.max) {
            self.spawn(Conn::default());
        }
    }

    /// Starts a worker on each connection dialled ahead (up to the cap).
    pub fn start_with(&mut self, conns: Vec<Conn>) {
        for conn in conns {
            if self.spawned >= self.max {
                break;
            }
            self.spawn(conn);
        }
    }

    fn spawn(&mut self, conn: Conn) {
        tokio::spawn(work(self.cx.clone(), self.tx.clone(), conn));
        self.spawned += 1;
    }

    /// Adds a worker for every waiting slot no idle worker will take.
    pub fn keep_up(&mut self) {
        let queue = &self.cx.queue;
        let backlog = queue.len();
        let idle = queue.idle();
        if backlog > idle {
            self.grow_to(self.spawned + (backlog - idle));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_fast_run_dials_what_it_keeps_in_flight_at_a_2ms_reply() {
        assert_eq!(Workers::dial_ahead(100.0), 0);
        assert_eq!(Workers::dial_ahead(2_000.0), 0);
        assert_eq!(Workers::dial_ahead(10_000.0), 20);
        assert_eq!(Workers::dial_ahead(30_000.0), 60);
        assert_eq!(Workers::dial_ahead(f64::NAN), 0);
    }

    #[tokio::test]
    async fn queue_hands_out_in_order_and_ends_when_closed() {
        let q = Arc::new(SlotQueue::default());
        let now = Instant::now();
        for seq in 0..3 {
            q.push(Slot {
                seq,
                due_ns: seq,
                released: now,
            });
        }
        q.close();
        let mut got = Vec::new();
        while let Some(s) = q.next().await {
            got.push(s.seq);
        }
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_on_push_and_on_close() {
        let q = Arc::new(SlotQueue::default());
        let q2 = q.clone();
        let waiter = tokio::spawn(async move {
            let first = q2.next().await.map(|s| s.seq);
            let second = q2.next().await.map(|s| s.seq);
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.push(Slot {
            seq: 7,
            due_ns: 0,
            released: Instant::now(),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.close();
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("worker woke")
            .expect("join");
        assert_eq!(got, (Some(7), None));
    }
}
