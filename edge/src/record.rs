//! DNS records: the stored shape, the API's view of it, and validation of
//! what clients send (create, full replace, partial update).
//!
//! Validation builds a complete candidate record first and only then does the
//! store swap it in, so a rejected request changes nothing.

use crate::envelope::ApiError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The record types the edge understands (a subset of Cloudflare's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    TXT,
    MX,
    NS,
}

impl RecordType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "A" => RecordType::A,
            "AAAA" => RecordType::AAAA,
            "CNAME" => RecordType::CNAME,
            "TXT" => RecordType::TXT,
            "MX" => RecordType::MX,
            "NS" => RecordType::NS,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
            RecordType::CNAME => "CNAME",
            RecordType::TXT => "TXT",
            RecordType::MX => "MX",
            RecordType::NS => "NS",
        }
    }

    /// Only address-like records can sit behind the proxy.
    pub fn proxiable(self) -> bool {
        matches!(self, RecordType::A | RecordType::AAAA | RecordType::CNAME)
    }
}

/// A record as persisted in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RecordType,
    pub content: String,
    pub proxied: bool,
    pub ttl: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_on: DateTime<Utc>,
    pub modified_on: DateTime<Utc>,
}

impl Record {
    /// The origin address the proxy forwards to, for proxied A/AAAA records.
    pub fn origin_ip(&self) -> Option<IpAddr> {
        match self.kind {
            RecordType::A | RecordType::AAAA => self.content.parse().ok(),
            _ => None,
        }
    }

    /// Cloudflare's JSON shape for a record (what `cloudflare::DnsRecord` decodes).
    pub fn view(&self, zone_id: &str, zone_name: &str) -> Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "zone_id": zone_id,
            "zone_name": zone_name,
            "name": self.name,
            "type": self.kind.as_str(),
            "content": self.content,
            "proxiable": self.kind.proxiable(),
            "proxied": self.proxied,
            "ttl": self.ttl,
            "locked": false,
            "settings": {},
            "meta": {
                "auto_added": false,
                "managed_by_apps": false,
                "managed_by_argo_tunnel": false,
                "source": "primary"
            },
            "comment": self.comment,
            "tags": self.tags,
            "created_on": rfc3339(&self.created_on),
            "modified_on": rfc3339(&self.modified_on),
        });
        if let (Some(p), Some(obj)) = (self.priority, v.as_object_mut()) {
            obj.insert("priority".into(), Value::from(p));
        }
        v
    }
}

/// Cloudflare's timestamp style: `2024-05-01T10:00:00.123456Z`.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A new 32-hex identifier, the shape Cloudflare uses for zones and records.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// True for a 32-character lowercase-hex identifier.
pub fn is_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The fields a client may set. `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct RecordInput {
    pub kind: Option<RecordType>,
    pub name: Option<String>,
    pub content: Option<String>,
    pub proxied: Option<bool>,
    pub ttl: Option<u32>,
    pub priority: Option<u16>,
    pub comment: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
}

/// What a client asked for: the three write verbs differ in what may be omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// POST: `type`, `name`, `content` required.
    Create,
    /// PUT: like create; an omitted `proxied` becomes false, an omitted `ttl` 1.
    Replace,
    /// PATCH: everything optional; omitted fields keep their value.
    Patch,
}

impl RecordInput {
    /// Parses a request body. Malformed JSON and wrongly typed fields are 400s.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        Self::from_map(&crate::envelope::body_object(body)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut input = RecordInput::default();
        if let Some(v) = field(map, "type") {
            let s = v
                .as_str()
                .ok_or_else(|| validation(9101, "DNS record type must be a string"))?;
            input.kind = Some(RecordType::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
                validation(
                    9101,
                    format!("DNS record type \"{s}\" is invalid or not supported (A, AAAA, CNAME, TXT, MX, NS)"),
                )
            })?);
        }
        if let Some(v) = field(map, "name") {
            let s = v
                .as_str()
                .ok_or_else(|| validation(9005, "DNS name must be a string"))?;
            input.name = Some(s.to_string());
        }
        if let Some(v) = field(map, "content") {
            let s = v
                .as_str()
                .ok_or_else(|| validation(9007, "DNS record content must be a string"))?;
            input.content = Some(s.to_string());
        }
        if let Some(v) = field(map, "proxied") {
            input.proxied = Some(
                v.as_bool()
                    .ok_or_else(|| validation(9003, "proxied must be true or false"))?,
            );
        }
        if let Some(v) = field(map, "ttl") {
            input.ttl = Some(integer(v, 9021, "TTL must be an integer")?);
        }
        if let Some(v) = field(map, "priority") {
            input.priority = Some(integer(v, 9100, "priority must be an integer 0-65535")?);
        }
        if let Some(v) = map.get("comment") {
            input.comment = Some(match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(validation(9102, "comment must be a string")),
            });
        }
        if let Some(v) = field(map, "tags") {
            let tags = v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|t| t.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| validation(9103, "tags must be an array of strings"))?;
            input.tags = Some(tags);
        }
        Ok(input)
    }

    /// Builds the complete record this write would produce, validating it as a whole.
    /// `existing` is the record being replaced or patched (None for create).
    pub fn build(
        self,
        mode: WriteMode,
        existing: Option<&Record>,
        zone_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Record, ApiError> {
        let patch = mode == WriteMode::Patch;
        let old = if patch { existing } else { None };
        let kind = self
            .kind
            .or(old.map(|r| r.kind))
            .ok_or_else(|| validation(9101, "DNS record type is required"))?;
        let raw_name = self
            .name
            .or(old.map(|r| r.name.clone()))
            .ok_or_else(|| validation(9005, "DNS name is required"))?;
        let name = normalize_name(&raw_name, zone_name)?;
        let content = self
            .content
            .or(old.map(|r| r.content.clone()))
            .ok_or_else(|| validation(9007, "DNS record content is required"))?;
        let content = validate_content(kind, &content)?;
        let proxied = self.proxied.or(old.map(|r| r.proxied)).unwrap_or(false);
        if proxied && !kind.proxiable() {
            return Err(validation(
                9004,
                format!("{} records cannot be proxied", kind.as_str()),
            ));
        }
        let ttl = self.ttl.or(old.map(|r| r.ttl)).unwrap_or(1);
        if ttl != 1 && !(30..=86_400).contains(&ttl) {
            return Err(validation(
                9021,
                "TTL must be between 30 and 86400 seconds, or 1 for Automatic",
            ));
        }
        let priority = match kind {
            RecordType::MX => Some(self.priority.or(old.and_then(|r| r.priority)).unwrap_or(0)),
            _ => None,
        };
        let comment = match self.comment {
            Some(c) => c,
            None => old.and_then(|r| r.comment.clone()),
        };
        let tags = self
            .tags
            .or(old.map(|r| r.tags.clone()))
            .unwrap_or_default();
        Ok(Record {
            id: existing.map(|r| r.id.clone()).unwrap_or_else(new_id),
            name,
            kind,
            content,
            proxied,
            ttl,
            priority,
            comment,
            tags,
            created_on: existing.map(|r| r.created_on).unwrap_or(now),
            modified_on: now,
        })
    }
}

/// A present, non-null field.
fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// Cloudflare's validation failure: code 1004 with the specific reason chained.
pub fn validation(code: u32, message: impl Into<String>) -> ApiError {
    ApiError::validation(code, message)
}

/// `@` is the apex; a relative name gets the zone appended, as Cloudflare does.
pub fn normalize_name(raw: &str, zone_name: &str) -> Result<String, ApiError> {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(validation(9005, "DNS name is invalid: empty"));
    }
    let full = if name == "@" || name == zone_name {
        zone_name.to_string()
    } else if name.ends_with(&format!(".{zone_name}")) {
        name
    } else {
        format!("{name}.{zone_name}")
    };
    if full.len() > 253 || !full.split('.').all(valid_label) {
        return Err(validation(9005, format!("DNS name is invalid: {raw:?}")));
    }
    Ok(full)
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && (label == "*"
            || label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn validate_content(kind: RecordType, content: &str) -> Result<String, ApiError> {
    let trimmed = content.trim();
    match kind {
        RecordType::A => address::<Ipv4Addr>(trimmed, kind, 9005, "IPv4"),
        RecordType::AAAA => address::<Ipv6Addr>(trimmed, kind, 9006, "IPv6"),
        RecordType::CNAME | RecordType::MX | RecordType::NS => {
            let host = trimmed.trim_end_matches('.').to_ascii_lowercase();
            if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
                Err(validation(
                    9007,
                    format!(
                        "Content for {} record is invalid. Must be a valid hostname",
                        kind.as_str()
                    ),
                ))
            } else {
                Ok(host)
            }
        }
        RecordType::TXT => {
            if content.is_empty() || content.len() > 2048 {
                Err(validation(
                    9007,
                    "Content for TXT record is invalid. Must be 1-2048 characters",
                ))
            } else {
                Ok(content.to_string())
            }
        }
    }
}

/// A JSON number that fits `T`, or Cloudflare's `code` with `message`.
fn integer<T: TryFrom<u64>>(v: &Value, code: u32, message: &str) -> Result<T, ApiError> {
    v.as_u64()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| validation(code, message))
}

/// An A or AAAA record's content in canonical form, or Cloudflare's `code`.
fn address<T: std::str::FromStr + std::fmt::Display>(
    content: &str,
    kind: RecordType,
    code: u32,
    family: &str,
) -> Result<String, ApiError> {
    let kind = kind.as_str();
    content.parse::<T>().map(|ip| ip.to_string()).map_err(|_| {
        validation(
            code,
            format!("Content for {kind} record is invalid. Must be a valid {family} address"),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn put_without_proxied_becomes_false() {
        let existing = RecordInput::from_body(
            br#"{"type":"A","name":"shop","content":"127.0.0.2","proxied":true}"#,
        )
        .unwrap()
        .build(WriteMode::Create, None, "handover.test", now())
        .unwrap();
        assert!(existing.proxied);
        assert_eq!(existing.name, "shop.handover.test");
        let replaced =
            RecordInput::from_body(br#"{"type":"A","name":"shop","content":"127.0.0.3"}"#)
                .unwrap()
                .build(WriteMode::Replace, Some(&existing), "handover.test", now())
                .unwrap();
        assert!(!replaced.proxied);
        assert_eq!(replaced.id, existing.id);
        assert_eq!(replaced.created_on, existing.created_on);
        let patched = RecordInput::from_body(br#"{"content":"127.0.0.4"}"#)
            .unwrap()
            .build(WriteMode::Patch, Some(&existing), "handover.test", now())
            .unwrap();
        assert!(patched.proxied);
        assert_eq!(patched.content, "127.0.0.4");
    }

    #[test]
    fn bad_inputs_are_rejected_with_codes() {
        let cases: &[(&[u8], u32)] = &[
            (b"{not json", 9207),
            (b"[1,2]", 9207),
            (br#"{"type":"A","name":"x","content":"300.1.1.1"}"#, 9005),
            (br#"{"type":"AAAA","name":"x","content":"127.0.0.1"}"#, 9006),
            (br#"{"type":"BOGUS","name":"x","content":"1.2.3.4"}"#, 9101),
            (br#"{"name":"x","content":"1.2.3.4"}"#, 9101),
            (br#"{"type":"A","content":"1.2.3.4"}"#, 9005),
            (br#"{"type":"A","name":"x"}"#, 9007),
            (
                br#"{"type":"A","name":"x","content":"1.2.3.4","ttl":5}"#,
                9021,
            ),
            (
                br#"{"type":"TXT","name":"x","content":"v","proxied":true}"#,
                9004,
            ),
            (
                br#"{"type":"A","name":"x","content":"1.2.3.4","proxied":"yes"}"#,
                9003,
            ),
            (
                br#"{"type":"A","name":"bad name","content":"1.2.3.4"}"#,
                9005,
            ),
        ];
        for (body, code) in cases {
            let err = RecordInput::from_body(body)
                .and_then(|i| i.build(WriteMode::Create, None, "handover.test", now()))
                .expect_err(std::str::from_utf8(body).unwrap());
            assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
            assert!(
                err.codes().contains(code),
                "{}: {:?}",
                String::from_utf8_lossy(body),
                err
            );
        }
    }

    #[test]
    fn names_are_normalized_into_the_zone() {
        assert_eq!(normalize_name("@", "z.test").unwrap(), "z.test");
        assert_eq!(
            normalize_name("Shop.Z.Test.", "z.test").unwrap(),
            "shop.z.test"
        );
        assert_eq!(normalize_name("a.b", "z.test").unwrap(), "a.b.z.test");
        assert!(normalize_name("", "z.test").is_err());
        assert!(normalize_name("a..b", "z.test").is_err());
    }

    #[test]
    fn ids_look_like_cloudflare_ids() {
        let id = new_id();
        assert!(is_id(&id), "{id}");
        assert!(!is_id("shop"));
    }
}
