//! This instance's in-memory view of the log: companies, users and orders in
//! position order, plus the position applied so far.
//!
//! Orders are kept compact (shared strings for users, products and instances,
//! the time as an integer) so a million of them fit well under 512 MB. The
//! listing keeps every `OrderPlaced` it is given, in position order, even a
//! second one for an id: a store that broke its one-event-per-id promise must
//! show up as a duplicate in the reconciler, not be hidden here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use handover_contract::{Company, LineItem, Order, User};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use tokio::sync::oneshot;

use crate::domain::Event;
use crate::steady::{ChunkedVec, ShardedMap};
use crate::store::StoredEvent;

/// One stored order, compact.
struct OrderRec {
    id: Arc<str>,
    user_id: Arc<str>,
    items: Box<[(Arc<str>, u32)]>,
    /// Microseconds since the Unix epoch (orders are stamped with µs precision).
    placed_at_us: i64,
    placed_by: Arc<str>,
}

/// Formats an order time the way the accepting instance stamped it.
pub fn format_time_us(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl OrderRec {
    fn to_order(&self) -> Order {
        Order {
            id: self.id.to_string(),
            user_id: self.user_id.to_string(),
            line_items: self
                .items
                .iter()
                .map(|(p, q)| LineItem {
                    product: p.to_string(),
                    quantity: *q,
                })
                .collect(),
            placed_at: format_time_us(self.placed_at_us),
            placed_by: self.placed_by.to_string(),
        }
    }
}

struct Items<'a>(&'a [(Arc<str>, u32)]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (product, quantity) in self.0 {
            seq.serialize_element(&LineItemRef {
                product,
                quantity: *quantity,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct LineItemRef<'a> {
    product: &'a str,
    quantity: u32,
}

/// Serializes exactly like [`Order`], without building one.
impl Serialize for OrderRec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Order", 5)?;
        st.serialize_field("id", &*self.id)?;
        st.serialize_field("user_id", &*self.user_id)?;
        st.serialize_field("line_items", &Items(&self.items))?;
        st.serialize_field("placed_at", &format_time_us(self.placed_at_us))?;
        st.serialize_field("placed_by", &*self.placed_by)?;
        st.end()
    }
}

#[derive(Default)]
struct State {
    companies: Vec<Company>,
    company_index: HashSet<String>,
    users: Vec<User>,
    user_index: HashMap<Arc<str>, usize>,
    /// Grown a chunk at a time: no copy of every order under the write lock.
    orders: ChunkedVec<OrderRec>,
    /// Order id → index of its first event in `orders`; one shard rehashes at a time.
    order_index: ShardedMap<Arc<str>, u32>,
    /// Shared copies of repeated strings (user ids, products, instance names).
    strings: HashSet<Arc<str>>,
}

impl State {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(a.clone());
        a
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::CompanyRegistered(c) => {
                if self.company_index.insert(c.id.clone()) {
                    self.companies.push(c);
                }
            }
            Event::UserRegistered(u) => {
                if !self.user_index.contains_key(u.id.as_str()) {
                    let id = self.intern(&u.id);
                    self.user_index.insert(id, self.users.len());
                    self.users.push(u);
                }
            }
            Event::OrderPlaced(o) => {
                let placed_at_us = DateTime::parse_from_rfc3339(&o.placed_at)
                    .map(|t| t.timestamp_micros())
                    .unwrap_or_else(|e| {
                        tracing::error!(order = %o.id, error = %e, "order with unreadable placed_at");
                        0
                    });
                let rec = OrderRec {
                    id: Arc::from(o.id.as_str()),
                    user_id: self.intern(&o.user_id),
                    items: o
                        .line_items
                        .iter()
                        .map(|i| (self.intern(&i.product), i.quantity))
                        .collect(),
                    placed_at_us,
                    placed_by: self.intern(&o.placed_by),
                };
                let index = u32::try_from(self.orders.len()).unwrap_or(u32::MAX);
                self.order_index.insert_first(rec.id.clone(), index);
                self.orders.push(rec);
            }
        }
    }
}

/// Output format of an order listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// One JSON array.
    Json,
    /// One order per line.
    Ndjson,
}

pub struct Projection {
    state: RwLock<State>,
    applied: AtomicU64,
    /// Requests waiting for a position to be applied (read-your-writes).
    waiters: Mutex<BTreeMap<u64, Vec<oneshot::Sender<()>>>>,
    /// Events that could not be decoded (logged, counted, skipped).
    skipped: AtomicU64,
}

impl Default for Projection {
    fn default() -> Self {
        Self::new()
    }
}

impl Projection {
    pub fn new() -> Self {
        Projection {
            state: RwLock::new(State::default()),
            applied: AtomicU64::new(0),
            waiters: Mutex::new(BTreeMap::new()),
            skipped: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a
        // way readers care about (each apply is a push), so take it anyway.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Highest position applied.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Applies a batch of events in position order and wakes the requests
    /// waiting for them. Decoding happens before the write lock is taken.
    pub fn apply(&self, events: &[StoredEvent]) {
        let Some(last) = events.last().map(|e| e.position) else {
            return;
        };
        let decoded: Vec<Event> = events
            .iter()
            .filter_map(|e| match Event::decode(&e.kind, &e.payload) {
                Ok(ev) => Some(ev),
                Err(err) => {
                    tracing::error!(position = e.position, error = %err, "skipping undecodable event");
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                    None
                }
            })
            .collect();
        {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            for ev in decoded {
                st.apply(ev);
            }
        }
        self.applied.fetch_max(last, Ordering::AcqRel);
        let ready = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            let rest = w.split_off(&(last + 1));
            std::mem::replace(&mut *w, rest)
        };
        for tx in ready.into_values().flatten() {
            let _ = tx.send(());
        }
    }

    /// Waits until `position` is applied; false on timeout.
    pub async fn wait_applied(&self, position: u64, timeout: Duration) -> bool {
        let rx = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if self.applied() >= position {
                return true;
            }
            let (tx, rx) = oneshot::channel();
            w.entry(position).or_default().push(tx);
            rx
        };
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
    }

    pub fn has_user(&self, id: &str) -> bool {
        self.read().user_index.contains_key(id)
    }

    pub fn has_order(&self, id: &str) -> bool {
        self.read().order_index.contains_key(id)
    }

    /// The first stored order with this id.
    pub fn order(&self, id: &str) -> Option<Order> {
        let st = self.read();
        let i = *st.order_index.get(id)?;
        st.orders.get(i as usize).map(OrderRec::to_order)
    }

    /// Number of `OrderPlaced` events applied (duplicates included).
    pub fn order_count(&self) -> usize {
        self.read().orders.len()
    }

    pub fn users(&self) -> Vec<User> {
        self.read().users.clone()
    }

    pub fn companies(&self) -> Vec<Company> {
        self.read().companies.clone()
    }

    pub fn company_ids(&self) -> HashSet<String> {
        self.read().company_index.clone()
    }

    /// Serializes orders `[start, min(start + max, end))` into `out`; returns
    /// the index after the last one written. The lock is held only while
    /// serializing this chunk, never while the bytes go to a socket.
    pub fn write_orders(
        &self,
        start: usize,
        end: usize,
        max: usize,
        format: ListFormat,
        out: &mut Vec<u8>,
    ) -> usize {
        let st = self.read();
        let end = end.min(st.orders.len()).min(start.saturating_add(max));
        for i in start..end {
            if format == ListFormat::Json && i > 0 {
                out.push(b',');
            }
            // Writing to a Vec cannot fail and OrderRec always serializes.
            if let Some(order) = st.orders.get(i) {
                let _ = serde_json::to_writer(&mut *out, order);
            }
            if format == ListFormat::Ndjson {
                out.push(b'\n');
            }
        }
        end.max(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Event;

    fn order_event(position: u64, id: &str, qty: u32) -> StoredEvent {
        let o = Order {
            id: id.into(),
            user_id: "u-1".into(),
            line_items: vec![LineItem {
                product: "apple".into(),
                quantity: qty,
            }],
            placed_at: "2024-05-01T10:00:00.123456Z".into(),
            placed_by: "a".into(),
        };
        let ne = Event::OrderPlaced(o).to_new_event();
        StoredEvent {
            position,
            kind: ne.kind,
            key: ne.key,
            payload: ne.payload,
        }
    }

    #[test]
    fn orders_round_trip_exactly() {
        let p = Projection::new();
        let e = order_event(1, "o-1", 3);
        p.apply(std::slice::from_ref(&e));
        let got = p.order("o-1").expect("applied");
        assert_eq!(serde_json::to_string(&got).expect("json"), e.payload);
        let mut buf = Vec::new();
        p.write_orders(0, 1, 10, ListFormat::Ndjson, &mut buf);
        assert_eq!(
            String::from_utf8(buf).expect("utf8"),
            format!("{}\n", e.payload)
        );
        assert_eq!(p.applied(), 1);
    }

    #[test]
    fn a_second_event_for_one_id_is_listed_twice() {
        let p = Projection::new();
        p.apply(&[order_event(1, "o-1", 1), order_event(2, "o-1", 2)]);
        assert_eq!(p.order_count(), 2);
        assert_eq!(p.order("o-1").expect("first").line_items[0].quantity, 1);
        let mut buf = Vec::new();
        let next = p.write_orders(0, 2, 1, ListFormat::Json, &mut buf);
        assert_eq!(next, 1);
        p.write_orders(next, 2, 1, ListFormat::Json, &mut buf);
        let list: Vec<Order> =
            serde_json::from_slice(&[b"[", &buf[..], b"]"].concat()).expect("array");
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn undecodable_events_are_counted_and_skipped() {
        let p = Projection::new();
        let bad = StoredEvent {
            position: 1,
            kind: "OrderPlaced".into(),
            key: "x".into(),
            payload: "{".into(),
        };
        p.apply(&[bad, order_event(2, "o-2", 1)]);
        assert_eq!(p.skipped(), 1);
        assert_eq!(p.applied(), 2);
        assert_eq!(p.order_count(), 1);
    }

    #[tokio::test]
    async fn waiters_wake_when_their_position_is_applied() {
        let p = Arc::new(Projection::new());
        let p2 = p.clone();
        let waiter = tokio::spawn(async move { p2.wait_applied(2, Duration::from_secs(10)).await });
        tokio::task::yield_now().await;
        p.apply(&[order_event(1, "a", 1)]);
        p.apply(&[order_event(2, "b", 1)]);
        assert!(waiter.await.expect("join"));
        assert!(!p.wait_applied(3, Duration::from_millis(20)).await);
        assert!(p.wait_applied(1, Duration::from_millis(1)).await);
    }
}
