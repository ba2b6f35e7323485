//! What request `seq` is: the order (id, user, 1-3 line items) or the probe.
//!
//! Everything is a pure function of the run's [`Plan`] and the sequence
//! number, so the body sent and the ack line written always agree and no
//! per-order state is kept.

use handover_contract::{order::line_items_digest, LineItem, NewOrder};
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

/// Request `seq` of the plan, ready to send, and what its ack line records.
#[derive(Debug)]
pub struct Request<'a> {
    pub id: String,
    pub url: &'a Url,
    /// The JSON body of a POST; `None` for a GET.
    pub body: Option<&'a [u8]>,
    pub user_id: Option<String>,
    pub items_digest: Option<String>,
}

impl Plan {
    /// Request `seq`; an order's body is serialized into `body` (reused).
    pub fn request<'a>(&'a self, seq: u64, body: &'a mut Vec<u8>) -> Request<'a> {
        match &self.kind {
            PlanKind::Orders { url, users } => {
                let order = order(&self.run_id, users, seq);
                let items_digest = digest(&order);
                body.clear();
                // A NewOrder always serializes; an empty body would be rejected (4xx), never lost.
                if serde_json::to_writer(&mut *body, &order).is_err() {
                    body.clear();
                }
                Request {
                    id: order.id,
                    url,
                    body: Some(&body[..]),
                    user_id: Some(order.user_id),
                    items_digest: Some(items_digest),
                }
            }
            PlanKind::Probe { url } => Request {
                id: order_id(&self.run_id, seq),
                url,
                body: None,
                user_id: None,
                items_digest: None,
            },
        }
    }
}

const PRODUCTS: &[&str] = &[
    "apple", "pear", "plum", "kiwi", "fig", "lime", "mango", "cherry", "grape", "melon", "peach",
    "quince",
];

/// The order id of slot `seq`.
pub fn order_id(run_id: &str, seq: u64) -> String {
    format!("{run_id}-{seq:010}")
}

/// The order for slot `seq`: varied line items and user, deterministic.
pub fn order(run_id: &str, users: &[String], seq: u64) -> NewOrder {
    let h = mix(seq);
    let user_id = if users.is_empty() {
        String::new()
    } else {
        users[(h % users.len() as u64) as usize].clone()
    };
    let n_items = 1 + ((h >> 16) % 3) as usize;
    let line_items = (0..n_items)
        .map(|k| {
            let hk = mix(h ^ (k as u64 + 1));
            LineItem {
                product: PRODUCTS[(hk % PRODUCTS.len() as u64) as usize].to_string(),
                quantity: 1 + ((hk >> 20) % 20) as u32,
            }
        })
        .collect();
    NewOrder {
        id: order_id(run_id, seq),
        user_id,
        line_items,
    }
}

/// The digest the ack log carries for an order.
pub fn digest(order: &NewOrder) -> String {
    line_items_digest(&order.line_items)
}

/// SplitMix64: cheap, well-spread, and reproducible across runs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_zero_padded() {
        assert_eq!(order_id("r1", 42), "r1-0000000042");
    }

    #[test]
    fn orders_vary_and_are_reproducible() {
        let users: Vec<String> = (1..=50).map(|i| format!("u-{i:04}")).collect();
        let mut sizes = [0usize; 4];
        let mut distinct_users = std::collections::BTreeSet::new();
        for seq in 0..300 {
            let o = order("r", &users, seq);
            assert_eq!(o, order("r", &users, seq));
            assert!((1..=3).contains(&o.line_items.len()));
            assert!(o
                .line_items
                .iter()
                .all(|i| (1..=20).contains(&i.quantity) && !i.product.is_empty()));
            sizes[o.line_items.len()] += 1;
            distinct_users.insert(o.user_id);
        }
        assert!(sizes[1] > 0 && sizes[2] > 0 && sizes[3] > 0, "{sizes:?}");
        assert!(distinct_users.len() > 30);
        assert_ne!(
            digest(&order("r", &users, 1)),
            digest(&order("r", &users, 2))
        );
    }
}
