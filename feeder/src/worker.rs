//! One slot of the schedule: build the request, send it, turn the reply into
//! a [`Record`].

use crate::clock::Clock;
use crate::record::Record;
use crate::transport::Transport;
use crate::workload;
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

/// Sends slot `seq` (due at `due_ns`) and records what happened.
pub async fn send(
    transport: &Transport,
    plan: &Plan,
    clock: &Clock,
    seq: u64,
    due_ns: u64,
) -> Record {
    let id = workload::order_id(&plan.run_id, seq);
    let (url, body, user_id, items_digest) = match &plan.kind {
        PlanKind::Orders { url, users } => {
            let order = workload::order(&plan.run_id, users, seq);
            let digest = workload::digest(&order);
            // A NewOrder always serializes; an empty body would be rejected (4xx), never lost.
            let body = serde_json::to_vec(&order).unwrap_or_default();
            (url.clone(), Some(body), Some(order.user_id), Some(digest))
        }
        PlanKind::Probe { url } => (url.clone(), None, None, None),
    };
    let (sent, reply) = transport.exchange(url, body).await;
    let done_ns = clock.now_ns();
    Record {
        id,
        due_ns,
        sent_ns: clock.unix_ns(sent),
        done_ns,
        status: reply.status,
        instance: reply.instance,
        user_id,
        items_digest,
    }
}
