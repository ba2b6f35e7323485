//! The domain events and the rules an order must follow before it is appended.

use handover_contract::{Company, NewOrder, Order, User};

use crate::store::NewEvent;

pub const COMPANY_REGISTERED: &str = "CompanyRegistered";
pub const USER_REGISTERED: &str = "UserRegistered";
pub const ORDER_PLACED: &str = "OrderPlaced";

/// Limits from the API contract.
pub const MAX_ID_LEN: usize = 64;
pub const MAX_LINE_ITEMS: usize = 50;
pub const MAX_PRODUCT_CHARS: usize = 64;
pub const MAX_QUANTITY: u32 = 1000;

/// Everything the log can hold. The payload of each kind is the entity's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    CompanyRegistered(Company),
    UserRegistered(User),
    OrderPlaced(Order),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownKind(String),
    #[error("invalid {kind} payload: {source}")]
    Payload {
        kind: &'static str,
        source: serde_json::Error,
    },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CompanyRegistered(_) => COMPANY_REGISTERED,
            Event::UserRegistered(_) => USER_REGISTERED,
            Event::OrderPlaced(_) => ORDER_PLACED,
        }
    }

    /// The idempotency key: one event per entity id and kind.
    pub fn key(&self) -> &str {
        match self {
            Event::CompanyRegistered(c) => &c.id,
            Event::UserRegistered(u) => &u.id,
            Event::OrderPlaced(o) => &o.id,
        }
    }

    pub fn to_new_event(&self) -> NewEvent {
        let payload = match self {
            Event::CompanyRegistered(c) => serde_json::to_string(c),
            Event::UserRegistered(u) => serde_json::to_string(u),
            Event::OrderPlaced(o) => serde_json::to_string(o),
        };
        NewEvent {
            kind: self.kind().to_string(),
            key: self.key().to_string(),
            // Serializing plain structs of strings and integers cannot fail.
            payload: payload.unwrap_or_default(),
        }
    }

    pub fn decode(kind: &str, payload: &str) -> Result<Event, DecodeError> {
        fn parse<T: serde::de::DeserializeOwned>(
            kind: &'static str,
            payload: &str,
        ) -> Result<T, DecodeError> {
            serde_json::from_str(payload).map_err(|source| DecodeError::Payload { kind, source })
        }
        match kind {
            COMPANY_REGISTERED => Ok(Event::CompanyRegistered(parse(
                COMPANY_REGISTERED,
                payload,
            )?)),
            USER_REGISTERED => Ok(Event::UserRegistered(parse(USER_REGISTERED, payload)?)),
            ORDER_PLACED => Ok(Event::OrderPlaced(parse(ORDER_PLACED, payload)?)),
            other => Err(DecodeError::UnknownKind(other.to_string())),
        }
    }
}

/// Why an order (or an imported entity) is refused; maps to 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("id must be 1-64 characters of A-Z a-z 0-9 _ . : -")]
    Id,
    #[error("line_items must hold 1-{MAX_LINE_ITEMS} items, got {0}")]
    LineItemCount(usize),
    #[error("line_items[{0}].product must be 1-{MAX_PRODUCT_CHARS} characters")]
    Product(usize),
    #[error("line_items[{0}].quantity must be 1-{MAX_QUANTITY}")]
    Quantity(usize),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
}

impl Invalid {
    pub fn code(&self) -> &'static str {
        match self {
            Invalid::Id => "invalid_id",
            Invalid::LineItemCount(_) | Invalid::Product(_) | Invalid::Quantity(_) => {
                "invalid_line_items"
            }
            Invalid::UnknownUser(_) => "unknown_user",
        }
    }
}

/// `1-64` of `A-Z a-z 0-9 _ . : -`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Checks the shape of an order; whether its user exists is the projection's call.
pub fn validate(order: &NewOrder) -> Result<(), Invalid> {
    if !valid_id(&order.id) {
        return Err(Invalid::Id);
    }
    let n = order.line_items.len();
    if n == 0 || n > MAX_LINE_ITEMS {
        return Err(Invalid::LineItemCount(n));
    }
    for (i, item) in order.line_items.iter().enumerate() {
        let chars = item.product.chars().count();
        if chars == 0 || chars > MAX_PRODUCT_CHARS || item.product.chars().any(char::is_control) {
            return Err(Invalid::Product(i));
        }
        if item.quantity == 0 || item.quantity > MAX_QUANTITY {
            return Err(Invalid::Quantity(i));
        }
    }
    Ok(())
}

/// True when a retried order carries the same content as the stored one
/// (the id matched already; time and instance are the store's).
pub fn same_content(stored: &Order, new: &NewOrder) -> bool {
    stored.user_id == new.user_id && stored.line_items == new.line_items
}

#[cfg(test)]
mod tests {
    use super::*;
    use handover_contract::LineItem;

    fn order(id: &str, items: Vec<(&str, u32)>) -> NewOrder {
        NewOrder {
            id: id.into(),
            user_id: "u-0001".into(),
            line_items: items
                .into_iter()
                .map(|(p, q)| LineItem {
                    product: p.into(),
                    quantity: q,
                })
                .collect(),
        }
    }

    #[test]
    fn ids() {
        assert!(valid_id("run1-0000000001"));
        assert!(valid_id("a:b.c_d-E9"));
        assert!(valid_id(&"x".repeat(64)));
        assert!(!valid_id(""));
        assert!(!valid_id(&"x".repeat(65)));
        assert!(!valid_id("has space"));
        assert!(!valid_id("slash/no"));
        assert!(!valid_id("ümlaut"));
    }

    #[test]
    fn line_item_rules() {
        assert_eq!(validate(&order("o1", vec![("apple", 1)])), Ok(()));
        assert_eq!(
            validate(&order("o1", vec![])),
            Err(Invalid::LineItemCount(0))
        );
        let many = vec![("apple", 1); 51];
        assert_eq!(
            validate(&order("o1", many)),
            Err(Invalid::LineItemCount(51))
        );
        assert_eq!(
            validate(&order("o1", vec![("apple", 1), ("", 1)])),
            Err(Invalid::Product(1))
        );
        let long = "p".repeat(65);
        assert_eq!(
            validate(&order("o1", vec![(&long, 1)])),
            Err(Invalid::Product(0))
        );
        assert_eq!(
            validate(&order("o1", vec![("é".repeat(64).as_str(), 1)])),
            Ok(())
        );
        assert_eq!(
            validate(&order("o1", vec![("a", 0)])),
            Err(Invalid::Quantity(0))
        );
        assert_eq!(
            validate(&order("o1", vec![("a", 1001)])),
            Err(Invalid::Quantity(0))
        );
        assert_eq!(validate(&order("o 1", vec![("a", 1)])), Err(Invalid::Id));
    }

    #[test]
    fn events_round_trip() {
        let e = Event::UserRegistered(User {
            id: "u-1".into(),
            name: "Ada".into(),
            company_id: "c-1".into(),
        });
        let ne = e.to_new_event();
        assert_eq!(ne.kind, USER_REGISTERED);
        assert_eq!(ne.key, "u-1");
        assert_eq!(Event::decode(&ne.kind, &ne.payload).expect("decode"), e);
        assert!(matches!(
            Event::decode("Nope", "{}"),
            Err(DecodeError::UnknownKind(_))
        ));
        assert!(Event::decode(USER_REGISTERED, "{").is_err());
    }
}
