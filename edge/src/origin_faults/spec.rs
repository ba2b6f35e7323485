//! The body of `POST /admin/origins/{ip}/faults`, checked field by field so
//! every rejection names the field that is wrong.
//!
//! ```json
//! {"latency_ms": 200, "jitter_ms": 50, "reset": false, "blackhole": true, "for_ms": 3000}
//! ```
//!
//! Every field is optional, but a body names at least one fault. A body arms
//! (or, with `latency_ms: 0` / `reset: false` / `blackhole: false`, disarms)
//! only the faults it names; the others stay as they were. `for_ms` times
//! every fault this body arms; without it they stay until cleared.

use crate::envelope::ApiError;
use serde::Serialize;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The longest latency (and jitter) one may add: an hour.
pub const MAX_LATENCY_MS: u64 = 3_600_000;
/// The longest a fault may be armed for with `for_ms`: a day.
pub const MAX_FOR_MS: u64 = 86_400_000;

/// The fields a body may have, for the unknown-field message.
const FIELDS: &str = "latency_ms, jitter_ms, reset, blackhole, for_ms";

/// Added delay before each request is forwarded: `ms`, plus or minus a
/// uniform draw of up to `jitter_ms` (never below zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Latency {
    #[serde(rename = "latency_ms")]
    pub ms: u64,
    pub jitter_ms: u64,
}

/// What one body asks for; `None`: the body does not name that fault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginFaultSpec {
    /// `ms == 0` disarms the latency.
    pub latency: Option<Latency>,
    pub reset: Option<bool>,
    pub blackhole: Option<bool>,
    /// How long what this body arms stays armed, in ms; `None`: until cleared.
    pub for_ms: Option<u64>,
}

impl OriginFaultSpec {
    /// Parses and checks a request body; a 400 naming the field otherwise.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        Self::from_map(&crate::envelope::body_object(body)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self, ApiError> {
        if let Some(unknown) = map.keys().find(|k| !FIELDS.split(", ").any(|f| f == *k)) {
            return Err(bad(unknown, &format!("unknown field (known: {FIELDS})")));
        }
        let latency_ms = millis(map, "latency_ms", 0, MAX_LATENCY_MS)?;
        let jitter_ms = millis(map, "jitter_ms", 0, MAX_LATENCY_MS)?;
        let latency = match (latency_ms, jitter_ms) {
            (None, Some(_)) => {
                return Err(bad("jitter_ms", "needs latency_ms in the same body"));
            }
            (Some(ms), Some(jitter)) if jitter > ms => {
                return Err(bad(
                    "jitter_ms",
                    &format!("must not exceed latency_ms ({jitter} > {ms})"),
                ));
            }
            (Some(ms), jitter) => Some(Latency {
                ms,
                jitter_ms: jitter.unwrap_or(0),
            }),
            (None, None) => None,
        };
        let spec = OriginFaultSpec {
            latency,
            reset: flag(map, "reset")?,
            blackhole: flag(map, "blackhole")?,
            for_ms: millis(map, "for_ms", 1, MAX_FOR_MS)?,
        };
        if spec.latency.is_none() && spec.reset.is_none() && spec.blackhole.is_none() {
            return Err(ApiError::bad_request(
                1001,
                "the body names no fault: give latency_ms, reset or blackhole",
            ));
        }
        if spec.for_ms.is_some() && !spec.arms_something() {
            return Err(bad(
                "for_ms",
                "this body arms no fault to time (latency_ms > 0, reset: true or blackhole: true)",
            ));
        }
        Ok(spec)
    }

    /// True when the body arms at least one fault (not only disarms).
    pub fn arms_something(&self) -> bool {
        self.latency.is_some_and(|l| l.ms > 0)
            || self.reset == Some(true)
            || self.blackhole == Some(true)
    }
}

/// The `{ip}` of an admin path: the origin IP, as a record's content names
/// it (`127.0.0.2`, `::1`, `[::1]`).
pub fn origin_ip(raw: &str) -> Result<IpAddr, ApiError> {
    let trimmed = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    trimmed.parse().map_err(|_| {
        bad(
            "ip",
            &format!("{raw:?} is not an IP address (a record's content, e.g. 127.0.0.2)"),
        )
    })
}

/// A 400 whose message starts with the field at fault.
fn bad(field: &str, problem: &str) -> ApiError {
    ApiError::bad_request(1001, format!("{field}: {problem}"))
}

/// An optional whole number of milliseconds in `min..=max`.
fn millis(
    map: &Map<String, Value>,
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ApiError> {
    let Some(v) = map.get(key) else {
        return Ok(None);
    };
    v.as_u64()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| {
            bad(
                key,
                &format!("must be a whole number of milliseconds from {min} to {max}, not {v}"),
            )
        })
}

/// An optional `true` or `false`.
fn flag(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(key, &format!("must be true or false, not {v}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<OriginFaultSpec, ApiError> {
        OriginFaultSpec::from_body(body.as_bytes())
    }

    fn message(body: &str) -> String {
        let err = parse(body).unwrap_err();
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{body}");
        err.errors[0].message.clone()
    }

    #[test]
    fn each_fault_and_its_timing() {
        assert_eq!(
            parse(r#"{"latency_ms": 200, "jitter_ms": 50}"#).unwrap(),
            OriginFaultSpec {
                latency: Some(Latency {
                    ms: 200,
                    jitter_ms: 50
                }),
                ..Default::default()
            }
        );
        let spec = parse(r#"{"blackhole": true, "for_ms": 3000}"#).unwrap();
        assert_eq!((spec.blackhole, spec.for_ms), (Some(true), Some(3000)));
        assert!(spec.arms_something());
        let off = parse(r#"{"reset": false, "latency_ms": 0}"#).unwrap();
        assert!(!off.arms_something(), "a body may only disarm");
    }

    #[test]
    fn every_rejection_names_the_field() {
        let cases = [
            (r#"{"latency_ms": "200"}"#, "latency_ms:"),
            (r#"{"latency_ms": -1}"#, "latency_ms:"),
            (r#"{"latency_ms": 1.5}"#, "latency_ms:"),
            (r#"{"latency_ms": 3600001}"#, "latency_ms:"),
            (r#"{"jitter_ms": 5}"#, "jitter_ms:"),
            (r#"{"latency_ms": 5, "jitter_ms": 6}"#, "jitter_ms:"),
            (r#"{"reset": "yes"}"#, "reset:"),
            (r#"{"blackhole": 1}"#, "blackhole:"),
            (r#"{"reset": true, "for_ms": 0}"#, "for_ms:"),
            (r#"{"reset": false, "for_ms": 10}"#, "for_ms:"),
            (r#"{"reset": true, "latncy_ms": 5}"#, "latncy_ms:"),
            (r#"{}"#, "names no fault"),
        ];
        for (body, field) in cases {
            let m = message(body);
            assert!(m.contains(field), "{body}: {m}");
        }
        assert_eq!(parse("[1]").unwrap_err().codes(), vec![9207]);
        assert_eq!(parse("{nope").unwrap_err().codes(), vec![9207]);
    }

    #[test]
    fn origin_ips_as_records_name_them() {
        assert_eq!(origin_ip("127.0.0.2").unwrap().to_string(), "127.0.0.2");
        assert_eq!(origin_ip("[::1]").unwrap().to_string(), "::1");
        assert_eq!(origin_ip("::1").unwrap().to_string(), "::1");
        let err = origin_ip("shop.test").unwrap_err();
        assert!(err.errors[0].message.starts_with("ip:"), "{err:?}");
    }
}
