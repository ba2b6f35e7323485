//! The example-app's domain as seen on the wire.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub company_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineItem {
    pub product: String,
    pub quantity: u32,
}

/// The body of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub id: String,
    pub user_id: String,
    pub line_items: Vec<LineItem>,
}

/// A stored order, as `GET /orders`, `GET /orders/{id}` and `POST /orders` return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub line_items: Vec<LineItem>,
    /// RFC 3339, set by the instance that accepted the order.
    pub placed_at: String,
    /// The `X-Instance` of the instance that accepted the order.
    pub placed_by: String,
}

/// Every error reply: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `malformed_json`, `unknown_user`.
    pub code: String,
    pub message: String,
}

/// A short, order-sensitive digest of line items: what the feeder records in
/// its ack log and what the reconciler recomputes from the stored order, so the
/// content check needs neither side to keep whole bodies. FNV-1a 64, hex.
pub fn line_items_digest(items: &[LineItem]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for item in items {
        eat(item.product.as_bytes());
        eat(&[0]);
        eat(&item.quantity.to_le_bytes());
        eat(&[0xff]);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: &str, q: u32) -> LineItem {
        LineItem {
            product: p.into(),
            quantity: q,
        }
    }

    #[test]
    fn digest_depends_on_every_field_and_order() {
        let a = line_items_digest(&[item("apple", 1), item("pear", 2)]);
        assert_eq!(a, line_items_digest(&[item("apple", 1), item("pear", 2)]));
        assert_ne!(a, line_items_digest(&[item("pear", 2), item("apple", 1)]));
        assert_ne!(a, line_items_digest(&[item("apple", 1), item("pear", 3)]));
        assert_ne!(a, line_items_digest(&[item("apple1", 1), item("pear", 2)]));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn new_order_rejects_unknown_fields() {
        let bad = r#"{"id":"x","user_id":"u","line_items":[],"price":1}"#;
        assert!(serde_json::from_str::<NewOrder>(bad).is_err());
    }
}
