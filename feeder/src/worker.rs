//! One slot of the schedule: wait for a connection, build the request, send
//! it, turn the reply into a [`Record`].

use crate::clock::Clock;
use crate::collector::Shared;
use crate::record::Record;
use crate::transport::Transport;
use crate::workload;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Instant;
use url::Url;

/// What every request of a run is made from; shared by all workers.
#[derive(Debug)]
pub struct Plan {
    pub run_id: String,
    pub kind: PlanKind,
}

#[derive(Debug)]
pub enum PlanKind {
    Orders { url: Url, users: Vec<String> },
    Probe { url: Url },
}

/// Sends slot `seq` (due at `due_ns`, handed over at `released`) and records
/// what happened. `None`: no connection was free within the timeout, so the
/// slot was never sent (counted as missed, no ack line: the server cannot
/// have it).
pub async fn send(
    transport: &Transport,
    plan: &Plan,
    clock: &Clock,
    shared: &Shared,
    seq: u64,
    due_ns: u64,
    released: Instant,
) -> Option<Record> {
    // Waiting slots hold no request yet: memory stays small in a stall.
    let Some(_permit) = transport.permit(released).await else {
        shared.missed.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let id = workload::order_id(&plan.run_id, seq);
    let (url, body, user_id, items_digest) = match &plan.kind {
        PlanKind::Orders { url, users } => {
            let order = workload::order(&plan.run_id, users, seq);
            let digest = workload::digest(&order);
            // A NewOrder always serializes; an empty body would be rejected (4xx), never lost.
            let body = serde_json::to_vec(&order).unwrap_or_default();
            (
                url,
                Some(Bytes::from(body)),
                Some(order.user_id),
                Some(digest),
            )
        }
        PlanKind::Probe { url } => (url, None, None, None),
    };
    shared.sent.fetch_add(1, Ordering::Relaxed);
    shared
        .last_sent_ns
        .fetch_max(clock.now_ns(), Ordering::Relaxed);
    let (sent, reply) = transport.exchange(url, body, released).await;
    let done_ns = clock.now_ns();
    Some(Record {
        id,
        due_ns,
        sent_ns: clock.unix_ns(sent),
        done_ns,
        status: reply.status,
        instance: reply.instance,
        user_id,
        items_digest,
    })
}
