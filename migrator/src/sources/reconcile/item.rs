//! One item of a JSON listing, read where the plan's pointers say: its id
//! (as the ack log writes ids: a string as is, a whole number in decimal)
//! and, with `digest_pointer`, the [`content_digest`] of its content — the
//! digest the feeder recorded for the content it sent.

use std::borrow::Cow;

use handover_contract::order::content_digest;
use serde_json::Value;

use super::SourceError;

/// Where the id and the content are inside one item.
#[derive(Debug, Clone)]
pub struct ItemPointers {
    pub id: String,
    pub digest: Option<String>,
}

/// What is wrong with one item; [`ItemError::at`] says where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub key: &'static str,
    /// The pointer resolves to nothing (else: to a value of the wrong kind).
    pub missing: bool,
    pub what: String,
}

impl ItemError {
    /// The error, placed (`http://x/items?page=2, item 7`).
    pub fn at(self, place: &str) -> SourceError {
        let what = format!("{place}: {}", self.what);
        if self.missing {
            SourceError::Missing {
                key: self.key.into(),
                what,
            }
        } else {
            SourceError::Unexpected {
                key: self.key.into(),
                what,
            }
        }
    }
}

/// The id and the content digest of `item`.
pub fn read<'v>(
    item: &'v Value,
    p: &ItemPointers,
) -> Result<(Cow<'v, str>, Option<u64>), ItemError> {
    let id = item.pointer(&p.id).ok_or_else(|| ItemError {
        key: "reconcile.id_pointer",
        missing: true,
        what: format!("nothing at {:?} in {}", p.id, start(item)),
    })?;
    let id = id_text(id).map_err(|what| ItemError {
        key: "reconcile.id_pointer",
        missing: false,
        what: format!("at {:?}: {what}", p.id),
    })?;
    let digest = match &p.digest {
        None => None,
        Some(at) => Some(content_digest(item.pointer(at).ok_or_else(|| {
            ItemError {
                key: "reconcile.digest_pointer",
                missing: true,
                what: format!("nothing at {at:?} in {}", start(item)),
            }
        })?)),
    };
    Ok((id, digest))
}

/// An id value as text: a non-empty string, or a whole number.
pub fn id_text(v: &Value) -> Result<Cow<'_, str>, String> {
    match v {
        Value::String(s) if s.is_empty() => Err("the id is an empty string".into()),
        Value::String(s) => Ok(Cow::Borrowed(s)),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(Cow::Owned(n.to_string())),
        other => Err(format!(
            "{} is not an id (a string or a whole number)",
            start(other)
        )),
    }
}

/// The first 80 characters of a value, for messages.
pub fn start(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use handover_contract::order::text_digest;
    use serde_json::json;

    fn pointers(digest: Option<&str>) -> ItemPointers {
        ItemPointers {
            id: "/key".into(),
            digest: digest.map(str::to_string),
        }
    }

    #[test]
    fn ids_and_digests_are_read_where_the_pointers_say() {
        let item = json!({"key": "run-1", "body": {"v": 1}, "note": "x"});
        let (id, digest) = read(&item, &pointers(Some("/body"))).unwrap();
        assert_eq!(id, "run-1");
        assert_eq!(digest, Some(content_digest(&json!({"v": 1}))));
        let number = json!({"key": 42});
        let (id, digest) = read(&number, &pointers(None)).unwrap();
        assert_eq!((id.as_ref(), digest), ("42", None));
        // A string's digest is its text's, so a text column agrees with JSON.
        let (_, digest) = read(&item, &pointers(Some("/note"))).unwrap();
        assert_eq!(digest, Some(text_digest("x")));
    }

    #[test]
    fn a_missing_pointer_or_a_bad_id_names_the_key() {
        let err = read(&json!({"id": "x"}), &pointers(None)).unwrap_err();
        assert_eq!((err.key, err.missing), ("reconcile.id_pointer", true));
        let err = err.at("page 1, item 1");
        assert!(matches!(err, SourceError::Missing { .. }));
        assert!(
            err.to_string()
                .starts_with("reconcile.id_pointer: page 1, item 1: nothing at \"/key\""),
            "{err}"
        );
        for bad in [
            json!({"key": 1.5}),
            json!({"key": {"a": 1}}),
            json!({"key": null}),
            json!({"key": ""}),
            json!({"key": true}),
        ] {
            let err = read(&bad, &pointers(None)).unwrap_err();
            assert_eq!(
                (err.key, err.missing),
                ("reconcile.id_pointer", false),
                "{bad}"
            );
        }
        let err = read(&json!({"key": "x"}), &pointers(Some("/body"))).unwrap_err();
        assert_eq!((err.key, err.missing), ("reconcile.digest_pointer", true));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = json!("é".repeat(200));
        assert_eq!(start(&long).chars().count(), 81);
    }
}
