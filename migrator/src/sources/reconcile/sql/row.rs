//! One row of the listing query, read the same way from PostgreSQL and
//! SQLite: the id as the ack log writes ids, and the content's digest as
//! the feeder records it — a text column as its text ([`text_digest`]), a
//! number as its decimal text, a `json`/`jsonb` column as its JSON value
//! ([`content_digest`]).

use std::borrow::Cow;

use handover_contract::order::{content_digest, text_digest};
#[cfg(feature = "postgres")]
use tokio_postgres::types::{FromSql, Type};

use crate::sources::SourceError;

/// A query returns the id, and optionally the content.
pub(super) fn columns_ok(n: usize) -> Result<(), SourceError> {
    if (1..=2).contains(&n) {
        return Ok(());
    }
    Err(SourceError::Unexpected {
        key: "reconcile.query".into(),
        what: format!("returns {n} columns; it must return the id, and optionally the content"),
    })
}

/// One row: the id and, with a second column, the content.
pub(super) struct Row<'a> {
    /// From 1, in the order the rows came.
    pub number: u64,
    pub id: Cell<'a>,
    pub content: Option<Cell<'a>>,
}

impl Row<'_> {
    /// The id as text and the content's digest.
    pub fn read(&self, shown: &str) -> Result<(Cow<'_, str>, Option<u64>), SourceError> {
        let bad = |what: String| SourceError::Unexpected {
            key: "reconcile.query".into(),
            what: format!("{shown}: row {}: {what}", self.number),
        };
        let id = match &self.id {
            Cell::Text(t) if !t.is_empty() => Cow::Borrowed(*t),
            Cell::Text(_) => return Err(bad("the id is empty".into())),
            Cell::Int(n) => Cow::Owned(n.to_string()),
            Cell::Uuid(u) => Cow::Borrowed(u.as_str()),
            other => {
                return Err(bad(format!(
                    "the id is {} (expected text or a whole number)",
                    other.kind()
                )))
            }
        };
        let digest = match &self.content {
            None => None,
            Some(c) => Some(c.digest().map_err(bad)?),
        };
        Ok((id, digest))
    }
}

/// One value as read from either database, borrowed from the row.
#[derive(Debug)]
// Only PostgreSQL has uuid and JSON columns.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Real(f64),
    Uuid(String),
    Json(serde_json::Value),
    /// A type that cannot be an id or content; the name says which.
    Other(&'static str),
}

impl Cell<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Text(_) => "text",
            Cell::Int(_) => "an integer",
            Cell::Real(_) => "a real number",
            Cell::Uuid(_) => "a uuid",
            Cell::Json(_) => "JSON",
            Cell::Other(what) => what,
        }
    }

    /// The digest the feeder records for the same content sent as JSON.
    fn digest(&self) -> Result<u64, String> {
        Ok(match self {
            Cell::Null => content_digest(&serde_json::Value::Null),
            Cell::Text(t) => text_digest(t),
            Cell::Int(n) => text_digest(&n.to_string()),
            Cell::Real(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => content_digest(&serde_json::Value::Number(n)),
                None => text_digest(&f.to_string()),
            },
            Cell::Uuid(u) => text_digest(u),
            Cell::Json(v) => content_digest(v),
            Cell::Other(what) => {
                return Err(format!(
                    "the content is {what}; cast it to text in the query"
                ))
            }
        })
    }
}

#[cfg(feature = "postgres")]
type BoxError = Box<dyn std::error::Error + Sync + Send>;

#[cfg(feature = "postgres")]
impl<'a> FromSql<'a> for Cell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let int = |n: usize| -> Result<i64, BoxError> {
            let bytes: [u8; 8] = match n {
                2 => {
                    let b: [u8; 2] = raw.try_into()?;
                    i64::from(i16::from_be_bytes(b)).to_be_bytes()
                }
                4 => {
                    let b: [u8; 4] = raw.try_into()?;
                    i64::from(i32::from_be_bytes(b)).to_be_bytes()
                }
                _ => raw.try_into()?,
            };
            Ok(i64::from_be_bytes(bytes))
        };
        Ok(match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Cell::Text(std::str::from_utf8(raw)?)
            }
            Type::INT2 => Cell::Int(int(2)?),
            Type::INT4 => Cell::Int(int(4)?),
            Type::INT8 => Cell::Int(int(8)?),
            Type::UUID => {
                let b: [u8; 16] = raw.try_into()?;
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                Cell::Uuid(format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                ))
            }
            Type::JSON => Cell::Json(serde_json::from_slice(raw)?),
            // jsonb: a version byte (1), then the JSON text.
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => Cell::Json(serde_json::from_slice(text)?),
                _ => return Err("unknown jsonb version".into()),
            },
            _ => Cell::Other(
                "of a type that cannot be read here: cast it to text in the query (e.g. col::text)",
            ),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

// The values come through the PostgreSQL decoder.
#[cfg(all(test, feature = "postgres"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cell(ty: &Type, raw: &[u8]) -> Cell<'static> {
        let raw: &'static [u8] = Box::leak(raw.to_vec().into_boxed_slice());
        Cell::from_sql(ty, raw).unwrap()
    }

    fn row(id: Cell<'static>, content: Option<Cell<'static>>) -> Row<'static> {
        Row {
            number: 3,
            id,
            content,
        }
    }

    #[test]
    fn postgres_values_become_ids_and_digests() {
        let int2 = cell(&Type::INT2, &(-7i16).to_be_bytes());
        let int8 = cell(&Type::INT8, &42i64.to_be_bytes());
        let uuid = cell(&Type::UUID, &[0xab; 16]);
        let jsonb = cell(&Type::JSONB, b"\x01{\"b\": 2, \"a\": [1]}");
        let text = cell(&Type::VARCHAR, b"v1");
        let first = row(int2, Some(jsonb));
        let (id, digest) = first.read("db").unwrap();
        assert_eq!(id, "-7");
        assert_eq!(
            digest,
            Some(content_digest(&serde_json::json!({"a": [1], "b": 2})))
        );
        let second = row(uuid, Some(int8));
        let (id, digest) = second.read("db").unwrap();
        assert_eq!(id, "abababab-abab-abab-abab-abababababab");
        assert_eq!(digest, Some(text_digest("42")));
        assert_eq!(
            row(text, None).read("db").unwrap(),
            (Cow::Borrowed("v1"), None)
        );
        let null = Cell::from_sql_null(&Type::TEXT).unwrap();
        assert_eq!(
            row(Cell::Text("x"), Some(null)).read("db").unwrap().1,
            Some(text_digest("null"))
        );
    }

    #[test]
    fn values_that_are_no_id_are_refused_with_the_row() {
        let float = cell(&Type::FLOAT8, &1.5f64.to_be_bytes());
        let err = row(float, None).read("db").unwrap_err().to_string();
        assert!(
            err.starts_with("reconcile.query: db: row 3: the id is of a type"),
            "{err}"
        );
        for id in [
            Cell::Null,
            Cell::Real(1.5),
            Cell::Json(serde_json::json!({})),
            Cell::Text(""),
        ] {
            assert!(row(id, None).read("db").is_err());
        }
        let err = row(Cell::Text("x"), Some(Cell::Other("a blob")))
            .read("db")
            .unwrap_err();
        assert!(err.to_string().contains("cast it to text"), "{err}");
        assert!(columns_ok(0).is_err() && columns_ok(3).is_err() && columns_ok(2).is_ok());
    }
}
