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
/// content check needs neither side to keep whole bodies. FNV-1a 64 over each
/// item's product, a 0 byte, its quantity (little-endian) and a 0xff byte.
///
/// Incremental, so a reader can fold items in as it parses them instead of
/// collecting a `Vec` ([`line_items_digest`] is the whole-slice form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemsDigest(u64);

impl Default for ItemsDigest {
    fn default() -> Self {
        ItemsDigest::new()
    }
}

impl ItemsDigest {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// The digest of no items.
    pub fn new() -> Self {
        ItemsDigest(Self::OFFSET)
    }

    /// Adds the next item.
    #[inline]
    pub fn push(&mut self, product: &str, quantity: u32) {
        self.eat(product.as_bytes());
        self.eat(&[0]);
        self.eat(&quantity.to_le_bytes());
        self.eat(&[0xff]);
    }

    #[inline]
    fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// The digest as a number.
    pub fn finish(self) -> u64 {
        self.0
    }

    /// The digest as the ack log carries it: 16 lowercase hex digits.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The ack log's `items_digest` of `items` (16 hex digits).
pub fn line_items_digest(items: &[LineItem]) -> String {
    let mut digest = ItemsDigest::new();
    for item in items {
        digest.push(&item.product, item.quantity);
    }
    digest.hex()
}

/// The digest of any service's stored content, for services that are not
/// the example app: the feeder records it for the value at the plan's
/// `content_pointer` of the body it sent, the reconciler recomputes it from
/// what the service lists (a JSON value at `digest_pointer`, a database
/// column, a command's second field). A JSON string is digested as its text,
/// any other value as its compact JSON, so `"v1"` sent and `v1` read back from
/// a text column agree. FNV-1a 64, like [`ItemsDigest`].
pub fn content_digest(value: &serde_json::Value) -> u64 {
    match value {
        serde_json::Value::String(s) => text_digest(s),
        other => text_digest(&other.to_string()),
    }
}

/// [`content_digest`] of content already read as text.
pub fn text_digest(text: &str) -> u64 {
    let mut d = ItemsDigest::new();
    d.eat(text.as_bytes());
    d.finish()
}

/// An ack log's `items_digest` back as a number: exactly 16 hex digits.
pub fn parse_items_digest(hex: &str) -> Option<u64> {
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
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
    fn content_digest_reads_strings_as_text() {
        use serde_json::json;
        assert_eq!(content_digest(&json!("v1")), text_digest("v1"));
        assert_eq!(content_digest(&json!(17)), text_digest("17"));
        assert_eq!(
            content_digest(&json!({"a": [1, "x"]})),
            text_digest(r#"{"a":[1,"x"]}"#)
        );
        assert_ne!(content_digest(&json!("17")), content_digest(&json!("18")));
        // FNV-1a 64 of the empty text is its offset basis.
        assert_eq!(text_digest(""), 0xcbf2_9ce4_8422_2325);
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
    fn digest_is_fnv1a_of_the_documented_bytes() {
        // FNV-1a 64 of the empty input is its offset basis.
        assert_eq!(line_items_digest(&[]), "cbf29ce484222325");
        let mut bytes = b"apple\0".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.push(0xff);
        let fnv = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        assert_eq!(
            line_items_digest(&[item("apple", 3)]),
            format!("{fnv:016x}")
        );
    }

    #[test]
    fn incremental_digest_agrees_with_the_slice_form_and_parses_back() {
        let items = [item("apple", 1), item("pear \"é\"", 1000), item("", 0)];
        let mut d = ItemsDigest::default();
        for i in &items {
            d.push(&i.product, i.quantity);
        }
        let hex = line_items_digest(&items);
        assert_eq!(d.hex(), hex);
        assert_eq!(parse_items_digest(&hex), Some(d.finish()));
        for bad in [
            "",
            "00ff",
            "+0000000000000ff",
            "000000000000000g",
            "0000000000000000f",
        ] {
            assert_eq!(parse_items_digest(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn new_order_rejects_unknown_fields() {
        let bad = r#"{"id":"x","user_id":"u","line_items":[],"price":1}"#;
        assert!(serde_json::from_str::<NewOrder>(bad).is_err());
    }
}
