//! What request `seq` is: the example-app order (id, user, 1-3 line items),
//! the probe, or the run's request template rendered for the slot.
//!
//! Everything is a pure function of the run's [`Plan`] and the sequence
//! number, so the body sent and the ack line written always agree and no
//! per-order state is kept. What is the same for every request (a path or
//! header block without placeholders) is rendered once, when the plan is
//! made; the rest into a worker's reused [`Scratch`].

use crate::outcome::OkStatus;
use crate::template::{self, pointer::Pointer, Compiled, Headers, Text, Vars};
use handover_contract::order::line_items_digest;
use handover_contract::{LineItem, NewOrder, Outcome};

/// What every request of a run is made from; shared by all workers.
#[derive(Debug)]
pub struct Plan {
    pub run_id: String,
    method: String,
    /// Path and query from the root (the target's base path included).
    path: Text,
    /// `path` when it has no placeholder.
    fixed_path: Option<String>,
    headers: Headers,
    /// `headers` rendered, when no value has a placeholder.
    fixed_headers: Option<Vec<u8>>,
    /// The template sets `User-Agent`: the feeder's own is left out.
    own_user_agent: bool,
    body: BodyPlan,
    content_pointer: Option<Pointer>,
    ok: OkStatus,
}

#[derive(Debug)]
enum BodyPlan {
    Order { users: Vec<String> },
    Empty,
    Text(Text),
}

/// A worker's buffers for the parts of a request that change per slot.
#[derive(Debug, Default)]
pub struct Scratch {
    path: String,
    headers: Vec<u8>,
    body: Vec<u8>,
}

/// Request `seq` of the plan, ready to send, and what its ack line records.
#[derive(Debug)]
pub struct Request<'a> {
    pub id: String,
    pub method: &'a str,
    /// Path and query from the root, as it goes on the request line.
    pub path: &'a str,
    /// Header lines (`name: value\r\n` each), `Content-Type` included.
    pub headers: &'a [u8],
    /// The headers name a `User-Agent`: send none of the feeder's own.
    pub own_user_agent: bool,
    pub body: Option<&'a [u8]>,
    pub user_id: Option<String>,
    pub items_digest: Option<String>,
}

const JSON_CONTENT_TYPE: &[u8] = b"content-type: application/json\r\n";

impl Plan {
    /// `POST {path}` with the example-app order for each slot.
    pub fn orders(run_id: &str, path: &str, users: Vec<String>) -> Plan {
        Plan::fixed(
            run_id,
            "POST",
            path,
            JSON_CONTENT_TYPE,
            BodyPlan::Order { users },
        )
    }

    /// `GET {path}`, the path taken as it is.
    pub fn probe(run_id: &str, path: &str) -> Plan {
        Plan::fixed(run_id, "GET", path, b"", BodyPlan::Empty)
    }

    fn fixed(run_id: &str, method: &str, path: &str, headers: &[u8], body: BodyPlan) -> Plan {
        Plan {
            run_id: run_id.to_string(),
            method: method.to_string(),
            path: Text::literal(path),
            fixed_path: Some(path.to_string()),
            headers: Headers::default(),
            fixed_headers: Some(headers.to_vec()),
            own_user_agent: false,
            body,
            content_pointer: None,
            ok: OkStatus::default(),
        }
    }

    /// The template's requests, its path under `base_path` (the target's
    /// path without the trailing `/`); `users` for an order body.
    pub fn template(run_id: &str, base_path: &str, t: Compiled, users: Vec<String>) -> Plan {
        let path = t.path.prefixed(base_path);
        Plan {
            run_id: run_id.to_string(),
            method: t.method,
            fixed_path: path.as_literal().map(str::to_string),
            path,
            fixed_headers: t.headers.as_literal(),
            headers: t.headers,
            own_user_agent: t.own_user_agent,
            body: match t.body {
                template::Body::Order => BodyPlan::Order { users },
                template::Body::Empty => BodyPlan::Empty,
                template::Body::Text(text) => BodyPlan::Text(text),
            },
            content_pointer: t.content_pointer,
            ok: t.ok,
        }
    }

    /// The outcome of a reply with `status` under this plan's `ok_status`.
    pub fn outcome(&self, status: Option<u16>) -> Outcome {
        self.ok.outcome(status)
    }

    /// Request `seq`; what changes per slot is rendered into `scratch`.
    pub fn request<'a>(&'a self, seq: u64, scratch: &'a mut Scratch) -> Request<'a> {
        let vars = Vars {
            run: &self.run_id,
            seq,
        };
        let Scratch {
            path,
            headers,
            body,
        } = scratch;
        let path: &str = match &self.fixed_path {
            Some(p) => p,
            None => render_string(&self.path, vars, path),
        };
        let headers: &[u8] = match &self.fixed_headers {
            Some(h) => h,
            None => {
                headers.clear();
                self.headers.render(vars, headers);
                headers
            }
        };
        let mut req = Request {
            // Set below: an order carries its id already (formatted once).
            id: String::new(),
            method: &self.method,
            path,
            headers,
            own_user_agent: self.own_user_agent,
            body: None,
            user_id: None,
            items_digest: None,
        };
        body.clear();
        match &self.body {
            BodyPlan::Order { users } => {
                let order = order(&self.run_id, users, seq);
                req.items_digest = Some(digest(&order));
                // A NewOrder always serializes; an empty body would be rejected (4xx), never lost.
                if serde_json::to_writer(&mut *body, &order).is_err() {
                    body.clear();
                }
                req.id = order.id;
                req.user_id = Some(order.user_id);
                req.body = Some(&body[..]);
            }
            BodyPlan::Empty => req.id = order_id(&self.run_id, seq),
            BodyPlan::Text(text) => {
                req.id = order_id(&self.run_id, seq);
                text.render(vars, body);
                req.items_digest = self
                    .content_pointer
                    .as_ref()
                    .and_then(|p| p.content_digest_in(body))
                    .map(|d| format!("{d:016x}"));
                req.body = Some(&body[..]);
            }
        }
        req
    }
}

/// `text` for `vars` into `buf` (reused), as a `&str`.
fn render_string<'a>(text: &Text, vars: Vars<'_>, buf: &'a mut String) -> &'a str {
    let mut bytes = std::mem::take(buf).into_bytes();
    bytes.clear();
    text.render(vars, &mut bytes);
    // Literals come from a &str and placeholder values are ASCII: always UTF-8.
    *buf = String::from_utf8(bytes).unwrap_or_default();
    buf
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
#[allow(clippy::unwrap_used)]
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

    fn users() -> Vec<String> {
        (1..=50).map(|i| format!("u-{i:04}")).collect()
    }

    #[test]
    fn an_orders_plan_sends_the_order_as_json() {
        let plan = Plan::orders("r", "/api/orders", users());
        let mut scratch = Scratch::default();
        let req = plan.request(5, &mut scratch);
        let order = order("r", &users(), 5);
        assert_eq!(req.id, "r-0000000005");
        assert_eq!((req.method, req.path), ("POST", "/api/orders"));
        assert_eq!(req.headers, b"content-type: application/json\r\n");
        assert!(!req.own_user_agent);
        assert_eq!(req.body, Some(&serde_json::to_vec(&order).unwrap()[..]));
        assert_eq!(req.user_id.as_deref(), Some(order.user_id.as_str()));
        assert_eq!(req.items_digest, Some(digest(&order)));
        assert_eq!(plan.outcome(Some(201)), Outcome::Ok);
    }

    #[test]
    fn a_template_without_a_body_sends_the_same_order() {
        let compiled = template::RequestTemplate::default().compile().unwrap();
        let plan = Plan::template("r", "/api", compiled, users());
        let (mut a, mut b) = (Scratch::default(), Scratch::default());
        let orders = Plan::orders("r", "/api/orders", users());
        let (t, o) = (plan.request(9, &mut a), orders.request(9, &mut b));
        assert_eq!((t.method, t.path, t.headers), (o.method, o.path, o.headers));
        assert_eq!(
            (t.body, &t.user_id, &t.items_digest),
            (o.body, &o.user_id, &o.items_digest)
        );
    }

    #[test]
    fn a_template_renders_per_slot_and_digests_its_content() {
        let t: template::RequestTemplate = toml::from_str(
            r#"
            method = "PUT"
            path = "/kv/{id}"
            body = '{"key":"{id}","value":{"seq":{seq},"run":"{run}"}}'
            ok_status = [201]
            content_pointer = "/value"
            headers = { X-Request = "{run}.{seq}" }
            "#,
        )
        .unwrap();
        let plan = Plan::template("r1", "", t.compile().unwrap(), Vec::new());
        let mut scratch = Scratch::default();
        for seq in [0, 7, 12_345] {
            let req = plan.request(seq, &mut scratch);
            let id = order_id("r1", seq);
            assert_eq!(req.id, id);
            assert_eq!(
                (req.method, req.path),
                ("PUT", format!("/kv/{id}").as_str())
            );
            assert_eq!(
                req.headers,
                format!("X-Request: r1.{seq}\r\ncontent-type: application/json\r\n").as_bytes()
            );
            let value = serde_json::json!({"seq": seq, "run": "r1"});
            let body = serde_json::json!({"key": id, "value": value});
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(req.body.unwrap()).unwrap(),
                body
            );
            let digest = handover_contract::order::content_digest(&value);
            let expected = format!("{digest:016x}");
            assert_eq!(req.items_digest.as_deref(), Some(expected.as_str()));
            assert_eq!(req.user_id, None);
        }
        assert_eq!(plan.outcome(Some(201)), Outcome::Ok);
        assert_eq!(plan.outcome(Some(200)), Outcome::Indeterminate);
        assert_eq!(plan.outcome(Some(404)), Outcome::Rejected);
    }

    #[test]
    fn a_probe_sends_its_path_as_it_is() {
        let plan = Plan::probe("r", "/p/{id}");
        let mut scratch = Scratch::default();
        let req = plan.request(1, &mut scratch);
        assert_eq!(
            (req.method, req.path, req.headers, req.body),
            ("GET", "/p/{id}", &b""[..], None)
        );
    }
}
