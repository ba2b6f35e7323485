//! What a key (kv-service) or an order id (pg-orders) may look like: 1 to
//! 200 characters of `A-Z a-z 0-9 - _ . :`. Narrow on purpose: such a name
//! goes into a URL path and a `?after=` cursor without escaping, and into a
//! log line without quoting surprises.

pub const MAX_LEN: usize = 200;

/// Why `name` is refused, or `None` when it is fine. `what` names the field.
pub fn problem(what: &str, name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_LEN {
        return Some(format!("{what} must be 1 to {MAX_LEN} characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if !name.chars().all(allowed) {
        return Some(format!("{what} may only hold A-Z a-z 0-9 - _ . :"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids_a_feeder_makes_and_refuses_the_rest() {
        assert_eq!(problem("key", "run1-000042"), None);
        assert_eq!(problem("key", "a.b:c_D-9"), None);
        assert!(problem("key", "").is_some());
        assert!(problem("key", &"x".repeat(MAX_LEN + 1)).is_some());
        assert!(problem("key", "a b").is_some());
        assert!(problem("key", "a/b").is_some());
        assert!(problem("key", "a&b").is_some());
        assert!(problem("key", "é").is_some());
        assert!(problem("id", "").unwrap_or_default().starts_with("id "));
    }
}
