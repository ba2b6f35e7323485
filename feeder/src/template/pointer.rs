//! RFC 6901 JSON pointers: the check that refuses a malformed one before a
//! run starts, and the two per-request reads: the digest of the value a
//! request body holds at `content_pointer`, and the instance a reply body
//! names at `instance_json`.
//!
//! Both reads happen for every request, so they walk the document as it is
//! parsed: values off the path are skipped without being built, and a
//! string at the end is used where it lies. Results are exactly those of
//! [`serde_json::Value::pointer`] on the parsed document (the tests hold
//! the two side by side, duplicate keys included: the last one wins).

use handover_contract::order::{content_digest, text_digest};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// `Ok` when `p` is a JSON pointer: empty (the whole document) or
/// `/`-separated tokens in which `~` appears only as `~0` or `~1`.
pub fn check(p: &str) -> Result<(), String> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(format!(
            "{p:?} is not a JSON pointer: it must be empty or start with '/' (e.g. \"/instance\")"
        ));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "{p:?} is not a JSON pointer: '~' must be written ~0, and '/' inside a name ~1"
            ));
        }
    }
    Ok(())
}

/// A checked pointer, split into its unescaped reference tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    tokens: Vec<String>,
}

impl Pointer {
    /// Checks `p` ([`check`]) and splits it.
    pub fn parse(p: &str) -> Result<Pointer, String> {
        check(p)?;
        let tokens = p
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Ok(Pointer { tokens })
    }

    /// [`content_digest`] of the value at this pointer in `body`; `None`
    /// when the body is not JSON or holds nothing there.
    pub fn content_digest_in(&self, body: &[u8]) -> Option<u64> {
        self.read(body, DigestLeaf)
    }

    /// The instance `body` names here: a string as it is, a number as
    /// written; anything else (missing, null, an object, a body that is not
    /// JSON) names none. Never fails: a reply is data, not input.
    pub fn instance_in(&self, body: &[u8]) -> Option<String> {
        self.read(body, TextLeaf)
    }

    fn read<L: Leaf>(&self, body: &[u8], leaf: L) -> Option<L::Out> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let found = Walk {
            tokens: &self.tokens,
            leaf,
        }
        .deserialize(&mut de)
        .ok()?;
        // Trailing bytes make the body not JSON, as for `from_slice`.
        de.end().ok()?;
        found
    }
}

/// What to make of the value a pointer reaches (it must be consumed whole).
trait Leaf: Copy {
    type Out;
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Option<Self::Out>, D::Error>;
}

/// Follows the remaining tokens, skipping everything off the path.
struct Walk<'a, L> {
    tokens: &'a [String],
    leaf: L,
}

impl<'de, L: Leaf> DeserializeSeed<'de> for Walk<'_, L> {
    type Value = Option<L::Out>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.tokens.split_first() {
            None => self.leaf.read(d),
            Some((token, rest)) => d.deserialize_any(Step {
                token,
                rest: Walk {
                    tokens: rest,
                    leaf: self.leaf,
                },
            }),
        }
    }
}

/// One token: a key into an object or an index into an array; a scalar
/// has nothing under it.
struct Step<'a, L> {
    token: &'a str,
    rest: Walk<'a, L>,
}

impl<'de, L: Leaf> Visitor<'de> for Step<'_, L> {
    type Value = Option<L::Out>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.token))? {
            if hit {
                // A later duplicate replaces an earlier one, as in a parsed map.
                found = map.next_value_seed(self.rest)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let index = array_index(self.token);
        let mut found = None;
        for i in 0.. {
            if Some(i) == index {
                match seq.next_element_seed(self.rest)? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
        }
        Ok(found)
    }
}

impl<L: Copy> Copy for Walk<'_, L> {}
impl<L: Copy> Clone for Walk<'_, L> {
    fn clone(&self) -> Self {
        *self
    }
}

/// An array index as `Value::pointer` reads one: digits, no sign, no
/// leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Whether an object key equals the token, without copying the key.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The content digest: a string's text where it lies; any other value
/// built (it is small: the part of the body the pointer names) and digested
/// as [`content_digest`] does.
#[derive(Clone, Copy)]
struct DigestLeaf;

impl Leaf for DigestLeaf {
    type Out = u64;
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DigestLeaf {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(text_digest(s)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(content_digest(&Value::from(v))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(content_digest(&Value::from(v))))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(content_digest(&Value::from(v))))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(content_digest(&Value::from(v))))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Some(content_digest(&Value::Null)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(content_digest(&value)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Some(content_digest(&value)))
    }
}

/// An instance name: a string or a number; anything else is skipped whole.
#[derive(Clone, Copy)]
struct TextLeaf;

impl Leaf for TextLeaf {
    type Out = String;
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextLeaf {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(s.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map(|n| n.to_string()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
