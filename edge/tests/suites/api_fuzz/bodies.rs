//! The bodies the API fuzz sends: arbitrary bytes, arbitrary JSON, and
//! structure-aware record bodies — coherent valid records, valid ones with
//! one field dropped or swapped for a hostile value, fields drawn from
//! hostile sets (wrong types, boundary TTLs and priorities, bad addresses
//! and names, over-long content), and those cut short or with a byte
//! changed.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Arbitrary JSON, keys biased towards the record's field names.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        proptest::num::f64::NORMAL.prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "type", "name", "content", "proxied", "ttl", "priority", "comment", "tags", "id",
            "zone_id", "data", "settings",
        ])
        .prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

/// A value of the wrong JSON type for most fields.
fn wrong_type() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!([])),
        Just(json!({"a": 1})),
    ]
}

fn string_from(choices: Vec<&'static str>) -> BoxedStrategy<Value> {
    prop::sample::select(choices)
        .prop_map(|s| Value::String(s.to_string()))
        .boxed()
}

fn record_type() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => string_from(vec!["A", "AAAA", "CNAME", "TXT", "MX", "NS", "a", "cname", "SRV", ""]),
        1 => "[A-Za-z]{0,6}".prop_map(Value::String),
        1 => wrong_type(),
    ]
    .boxed()
}

fn name() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => string_from(vec![
            "shop", "www", "txt", "v6", "@", "new", "api.handover.test", "Shop.Handover.Test.",
            "x.y.z", "*", "*.wild", "a..b", "", " ", "-", "a_b", "handover.test", "ünï",
            "trailing.", ".lead", "a b",
        ]),
        2 => "[a-z0-9.*_-]{0,20}".prop_map(Value::String),
        1 => Just(Value::String("l".repeat(64))),
        1 => Just(Value::String(format!("{}.x", "abcdefghi.".repeat(25)))),
        1 => wrong_type(),
    ]
    .boxed()
}

fn content() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => any::<[u8; 4]>().prop_map(|o| Value::String(Ipv4Addr::from(o).to_string())),
        2 => any::<[u16; 8]>().prop_map(|s| Value::String(Ipv6Addr::from(s).to_string())),
        4 => string_from(vec![
            "127.0.0.2", "127.0.0.3", "999.0.0.1", "127.0.0", "1.2.3.4.5", " 127.0.0.3 ", "::1",
            "fe80::1", "::ffff:1.2.3.4", "shop.handover.test", "mail.example.com.", "a..b", "",
            "hello world", "v=spf1 -all",
        ]),
        2 => ".{0,30}".prop_map(Value::String),
        1 => Just(Value::String("t".repeat(2049))),
        1 => wrong_type(),
    ]
    .boxed()
}

fn ttl() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::sample::select(vec![1u64, 29, 30, 120, 86_400, 86_401, 0, u64::from(u32::MAX), 1 << 40])
            .prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => Just(json!(-1)),
        1 => Just(json!("120")),
        1 => wrong_type(),
    ]
    .boxed()
}

fn priority() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(vec![0u64, 10, 65_535, 65_536]).prop_map(Value::from),
        1 => Just(json!(-1)),
        1 => wrong_type(),
    ]
    .boxed()
}

fn tags() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::collection::vec("[a-z:]{0,10}", 0..4)
            .prop_map(|t| Value::Array(t.into_iter().map(Value::String).collect())),
        1 => Just(json!(["ok", 5])),
        1 => wrong_type(),
    ]
    .boxed()
}

/// A coherent, valid record: content that fits the type, a fresh name, a
/// TTL in range, `proxied` only where the type allows it. PATCH and PUT
/// take it as well (PATCH as a full set of fields).
fn valid_record() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec!["A", "AAAA", "CNAME", "TXT", "MX", "NS"]);
    let name = ("[a-z][a-z0-9-]{0,10}", prop::option::of("[a-z0-9]{1,5}"))
        .prop_map(|(a, sub)| sub.map_or(a.clone(), |s| format!("{a}.{s}")));
    let ttl = prop_oneof![Just(1u32), 30u32..=86_400];
    (
        kind,
        name,
        any::<[u8; 4]>(),
        any::<[u16; 8]>(),
        "[a-z]{1,8}",
        any::<bool>(),
        ttl,
    )
        .prop_map(|(kind, name, v4, v6, word, proxied, ttl)| {
            let content = match kind {
                "A" => Ipv4Addr::from(v4).to_string(),
                "AAAA" => Ipv6Addr::from(v6).to_string(),
                "TXT" => format!("v={word}"),
                _ => format!("{word}.example.com"),
            };
            let proxiable = matches!(kind, "A" | "AAAA" | "CNAME");
            json!({
                "type": kind,
                "name": name,
                "content": content,
                "proxied": proxied && proxiable,
                "ttl": ttl,
            })
        })
}

/// A valid record with one field dropped or swapped for a hostile value.
fn nearly_valid_record() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec!["type", "name", "content", "proxied", "ttl"]);
    (valid_record(), field, prop::option::of(hostile_value())).prop_map(|(mut v, field, value)| {
        if let Some(map) = v.as_object_mut() {
            match value {
                Some(value) => map.insert(field.to_string(), value),
                None => map.remove(field),
            };
        }
        v
    })
}

/// Any of the per-field hostile values.
fn hostile_value() -> BoxedStrategy<Value> {
    prop_oneof![
        record_type(),
        name(),
        content(),
        ttl(),
        priority(),
        tags(),
        wrong_type()
    ]
    .boxed()
}

/// A record body: each field present or not, valid or broken, plus a
/// stray key now and then.
fn hostile_record() -> impl Strategy<Value = Value> {
    let field = |v: BoxedStrategy<Value>| prop::option::weighted(0.7, v);
    (
        (
            field(record_type()),
            field(name()),
            field(content()),
            field(prop_oneof![3 => any::<bool>().prop_map(Value::Bool), 1 => wrong_type()].boxed()),
        ),
        (
            field(ttl()),
            prop::option::weighted(0.2, priority()),
            prop::option::weighted(
                0.2,
                prop_oneof![".{0,20}".prop_map(Value::String), wrong_type()],
            ),
            prop::option::weighted(0.2, tags()),
            prop::option::weighted(0.1, (key(), any_json())),
        ),
    )
        .prop_map(
            |((kind, name, content, proxied), (ttl, priority, comment, tags, extra))| {
                let mut map = Map::new();
                let fields = [
                    ("type", kind),
                    ("name", name),
                    ("content", content),
                    ("proxied", proxied),
                    ("ttl", ttl),
                    ("priority", priority),
                    ("comment", comment),
                    ("tags", tags),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        map.insert(k.to_string(), v);
                    }
                }
                if let Some((k, v)) = extra {
                    map.insert(k, v);
                }
                Value::Object(map)
            },
        )
}

/// A structured body's bytes, cut short or with a byte changed.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    (
        hostile_record(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(v, at, byte, cut)| {
            let mut bytes = serde_json::to_vec(&v).unwrap_or_default();
            if bytes.is_empty() {
                return bytes;
            }
            let i = at.index(bytes.len());
            if cut {
                bytes.truncate(i);
            } else {
                bytes[i] = byte;
            }
            bytes
        })
}

/// A request body: bytes, any JSON, or a record body valid, nearly valid,
/// hostile or mangled.
pub(super) fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        2 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        4 => valid_record().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        4 => nearly_valid_record().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        4 => hostile_record().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        2 => mangled(),
    ]
}
