//! Reading one number at a JSON pointer (RFC 6901) of a document served over
//! HTTP — `{"raft": {"applied_index": 42}}` read at `/raft/applied_index`.

use serde::{Deserialize, Serialize};
use url::Url;

use super::{fetch, SourceError};

/// `{ url, pointer }` in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointerQuery {
    pub url: Url,
    /// An RFC 6901 JSON pointer: `""` (the whole document) or `/a/0/b`.
    pub pointer: String,
}

/// Checks that `pointer` is a JSON pointer (`""` or starting with `/`,
/// `~` only as `~0` or `~1`); `key` names it in the message.
pub fn check_pointer(key: &str, pointer: &str) -> Result<(), String> {
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return Err(format!(
            "{key}: {pointer:?} is not a JSON pointer (it must start with '/', e.g. \"/status/applied\")"
        ));
    }
    let bytes = pointer.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err(format!(
                "{key}: {pointer:?} is not a JSON pointer ('~' must be written ~0, '/' inside a name ~1)"
            ));
        }
    }
    Ok(())
}

/// A whole number at `pointer` of `doc`: a JSON number with no fraction, or
/// a string of digits (some services quote large integers).
pub fn number_at(doc: &serde_json::Value, pointer: &str) -> Result<u64, String> {
    let v = doc
        .pointer(pointer)
        .ok_or_else(|| format!("nothing at {pointer:?}"))?;
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| format!("{n} at {pointer:?} is not a whole non-negative number")),
        serde_json::Value::String(s) => s
            .parse()
            .map_err(|_| format!("{s:?} at {pointer:?} is not a whole non-negative number")),
        other => Err(format!("{other} at {pointer:?} is not a number")),
    }
}

impl PointerQuery {
    pub fn describe(&self) -> String {
        format!("{} at {}", self.pointer, self.url)
    }

    pub fn validate(&self, key: &str) -> Result<(), String> {
        check_pointer(&format!("{key}.pointer"), &self.pointer)?;
        if !matches!(self.url.scheme(), "http" | "https") {
            return Err(format!("{key}.url: {} is not an http(s) URL", self.url));
        }
        Ok(())
    }

    /// Fetches the document and reads the number.
    pub async fn read(&self, http: &reqwest::Client, key: &str) -> Result<u64, SourceError> {
        let body = fetch(http, key, &self.url).await?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| SourceError::Unexpected {
                key: key.to_string(),
                what: format!("{} is not JSON: {e}", self.url),
            })?;
        number_at(&doc, &self.pointer).map_err(|what| SourceError::Missing {
            key: key.to_string(),
            what: format!("{}: {what}", self.url),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_are_checked() {
        assert!(check_pointer("k", "").is_ok());
        assert!(check_pointer("k", "/a/0/b~1c~0").is_ok());
        assert!(check_pointer("k", "a/b").unwrap_err().starts_with("k:"));
        assert!(check_pointer("k", "/a~2").is_err());
        assert!(check_pointer("k", "/a~").is_err());
    }

    #[test]
    fn numbers_are_read_where_the_pointer_says() {
        let doc = json!({"raft": {"applied": 42, "head": "1234", "f": 7.0, "neg": -1, "x": 1.5, "s": "x"}});
        assert_eq!(number_at(&doc, "/raft/applied"), Ok(42));
        assert_eq!(number_at(&doc, "/raft/head"), Ok(1234));
        assert_eq!(number_at(&doc, "/raft/f"), Ok(7));
        for bad in ["/raft/neg", "/raft/x", "/raft/s", "/raft", "/nope"] {
            assert!(number_at(&doc, bad).is_err(), "{bad}");
        }
        assert!(number_at(&doc, "/nope").unwrap_err().contains("nothing at"));
    }
}
