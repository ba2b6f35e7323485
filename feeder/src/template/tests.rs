//! The template's parsing, defaults, rendering and every refusal.

#![allow(clippy::unwrap_used)]

use super::*;
use handover_contract::Outcome;

fn kv() -> RequestTemplate {
    RequestTemplate {
        method: "PUT".into(),
        path: "/kv/{id}?run={run}".into(),
        headers: BTreeMap::from([
            ("X-Seq".into(), "{seq}".into()),
            ("Authorization".into(), "Bearer s3cr3t".into()),
        ]),
        body: Some(r#"{"key":"{id}","value":{"n":{seq},"run":"{run}"}}"#.into()),
        ok_status: Some(vec![200, 201]),
        instance_header: None,
        instance_json: Some("/instance".into()),
        content_pointer: Some("/value".into()),
    }
}

/// The template with `edit` applied must fail on `key`, saying `says`.
#[track_caller]
fn refused(edit: impl FnOnce(&mut RequestTemplate), key: &str, says: &str) {
    let mut t = kv();
    edit(&mut t);
    let e = t.validate().unwrap_err();
    assert_eq!(e.field.key(), key, "{e}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("{key}: ")), "{text}");
    assert!(text.contains(says), "{text}");
}

#[test]
fn defaults_are_the_example_app_order() {
    let t: RequestTemplate = toml::from_str("").unwrap();
    assert_eq!(t, RequestTemplate::default());
    assert_eq!(t.method, "POST");
    assert_eq!(t.path, "/orders");
    let c = t.compile().unwrap();
    assert_eq!(c.body, Body::Order);
    assert_eq!(c.ok, OkStatus::default());
    assert_eq!(
        c.headers.as_literal().unwrap(),
        b"content-type: application/json\r\n"
    );
    assert!(!c.own_user_agent);
    assert_eq!(
        t.reply_instance("X-Instance"),
        ReplyInstance::Header("X-Instance".into())
    );
}

#[test]
fn parses_the_plan_table_and_refuses_unknown_keys() {
    let t: RequestTemplate = toml::from_str(
        r#"
        method = "PUT"
        path = "/kv/{id}?run={run}"
        body = '{"key":"{id}","value":{"n":{seq},"run":"{run}"}}'
        ok_status = [200, 201]
        instance_json = "/instance"
        content_pointer = "/value"
        [headers]
        X-Seq = "{seq}"
        Authorization = "Bearer s3cr3t"
        "#,
    )
    .unwrap();
    assert_eq!(t, kv());
    let back: RequestTemplate = toml::from_str(&toml::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
    let e = toml::from_str::<RequestTemplate>("methd = \"GET\"").unwrap_err();
    assert!(e.to_string().contains("unknown field `methd`"), "{e}");
}

#[test]
fn renders_path_headers_and_body() {
    let c = kv().compile().unwrap();
    let vars = Vars { run: "r1", seq: 7 };
    assert_eq!(c.method, "PUT");
    assert_eq!(c.path.render_string(vars), "/kv/r1-0000000007?run=r1");
    let mut block = Vec::new();
    c.headers.render(vars, &mut block);
    assert_eq!(
        String::from_utf8(block).unwrap(),
        "Authorization: Bearer s3cr3t\r\nX-Seq: 7\r\ncontent-type: application/json\r\n"
    );
    assert!(c.headers.as_literal().is_none());
    let Body::Text(body) = &c.body else {
        panic!("{:?}", c.body)
    };
    assert_eq!(
        body.render_string(vars),
        r#"{"key":"r1-0000000007","value":{"n":7,"run":"r1"}}"#
    );
    assert_eq!(c.ok.outcome(Some(201)), Outcome::Ok);
    assert_eq!(c.ok.outcome(Some(204)), Outcome::Indeterminate);
    assert_eq!(
        c.content_pointer,
        Some(pointer::Pointer::parse("/value").unwrap())
    );
}

#[test]
fn debug_hides_secret_header_values() {
    let shown = format!("{:?} {:?}", kv(), kv().compile().unwrap());
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(
        shown.contains("Authorization") && shown.contains("<redacted>"),
        "{shown}"
    );
    assert!(shown.contains("X-Seq"), "{shown}");
}

#[test]
fn content_type_decides_the_json_check() {
    let mut t = kv();
    t.content_pointer = None;
    t.body = Some("key={id}".into());
    t.headers.insert(
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    );
    let c = t.compile().unwrap();
    assert_eq!(
        c.headers
            .0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .count(),
        1
    );
    // A +json media type with parameters is JSON: the body is checked.
    t.headers.insert(
        "Content-Type".into(),
        "application/merge-patch+json; charset=utf-8".into(),
    );
    let e = t.validate().unwrap_err();
    assert_eq!(e.field, Field::Body, "{e}");
    // No body: no content type is added.
    t.body = Some(String::new());
    t.headers.clear();
    let c = t.compile().unwrap();
    assert_eq!(c.body, Body::Empty);
    assert!(c.headers.0.is_empty());
}

#[test]
fn a_user_agent_header_replaces_the_feeders() {
    let mut t = kv();
    t.headers.insert("user-agent".into(), "mine/1".into());
    assert!(t.compile().unwrap().own_user_agent);
}

#[test]
fn refuses_bad_placeholders_everywhere() {
    refused(
        |t| t.path = "/kv/{key}".into(),
        "feeder.request.path",
        "unknown placeholder {key}",
    );
    refused(
        |t| t.path = "/kv/{id".into(),
        "feeder.request.path",
        "not closed",
    );
    refused(
        |t| t.body = Some(r#"{"k":"{ID}"}"#.into()),
        "feeder.request.body",
        "unknown placeholder {ID}",
    );
    refused(
        |t| {
            t.headers.insert("X-Run".into(), "{runid}".into());
        },
        "feeder.request.headers.X-Run",
        "unknown placeholder {runid}",
    );
}

#[test]
fn refuses_methods_that_are_not_tokens() {
    for bad in ["", "GE T", "PUT\r\n", "GET/", "PÜT", "(GET)"] {
        refused(
            |t| t.method = bad.into(),
            "feeder.request.method",
            "not an HTTP method",
        );
    }
    let mut t = kv();
    t.method = "PROPFIND".into();
    assert!(t.validate().is_ok());
}

#[test]
fn refuses_paths_that_are_not_request_paths() {
    refused(
        |t| t.path = "kv/{id}".into(),
        "feeder.request.path",
        "must start with '/'",
    );
    refused(
        |t| t.path = String::new(),
        "feeder.request.path",
        "must start with '/'",
    );
    for bad in ["/a b", "/a#frag", "/ü", "/a\r\nX: y", "/a\t"] {
        refused(
            |t| t.path = bad.into(),
            "feeder.request.path",
            "visible ASCII",
        );
    }
}

#[test]
fn refuses_bad_header_names_and_values_without_quoting_them() {
    refused(
        |t| {
            t.headers.insert("Bad Name".into(), "x".into());
        },
        "feeder.request.headers.Bad Name",
        "not a valid HTTP header name",
    );
    refused(
        |t| {
            t.headers.insert("".into(), "x".into());
        },
        "feeder.request.headers.",
        "not a valid HTTP header name",
    );
    let mut t = kv();
    t.headers
        .insert("X-Token".into(), "s3cr3t\r\nInjected: yes".into());
    let e = t.validate().unwrap_err();
    assert_eq!(e.field, Field::Header("X-Token".into()));
    assert!(
        e.to_string().contains("not a valid HTTP header value"),
        "{e}"
    );
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
    for own in [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "upgrade",
    ] {
        refused(
            |t| {
                t.headers.insert(own.into(), "x".into());
            },
            &format!("feeder.request.headers.{own}"),
            "set by the feeder",
        );
    }
    refused(
        |t| {
            t.headers.insert("x-seq".into(), "1".into());
        },
        "feeder.request.headers.x-seq",
        "given twice",
    );
}

#[test]
fn refuses_statuses_outside_100_to_599_and_an_empty_list() {
    for bad in [vec![99], vec![200, 600], vec![0], vec![1000]] {
        refused(
            |t| t.ok_status = Some(bad),
            "feeder.request.ok_status",
            "not an HTTP status",
        );
    }
    refused(
        |t| t.ok_status = Some(vec![]),
        "feeder.request.ok_status",
        "lists no status",
    );
    let mut t = kv();
    t.ok_status = Some(vec![100, 599]);
    assert!(t.validate().is_ok());
}

#[test]
fn refuses_malformed_pointers() {
    for bad in ["instance", "/a~2", "/a~"] {
        refused(
            |t| t.instance_json = Some(bad.into()),
            "feeder.request.instance_json",
            "not a JSON pointer",
        );
        refused(
            |t| t.content_pointer = Some(bad.into()),
            "feeder.request.content_pointer",
            "not a JSON pointer",
        );
    }
    refused(
        |t| t.instance_header = Some("X-Node".into()),
        "feeder.request.instance_json",
        "not both",
    );
    refused(
        |t| {
            t.instance_json = None;
            t.instance_header = Some("X Node".into());
        },
        "feeder.request.instance_header",
        "not a valid header name",
    );
}

#[test]
fn refuses_json_bodies_that_do_not_render_to_json() {
    // A placeholder for a string outside quotes.
    refused(
        |t| t.body = Some(r#"{"key":{id}}"#.into()),
        "feeder.request.body",
        "not valid JSON once rendered",
    );
    refused(
        |t| t.body = Some(r#"{"key":"#.into()),
        "feeder.request.body",
        "not valid JSON",
    );
    // Rust-style doubled braces are not JSON here: braces are literal.
    refused(
        |t| t.body = Some(r#"{{"key":"{id}"}}"#.into()),
        "feeder.request.body",
        "not valid JSON",
    );
    // A number placeholder outside quotes is fine.
    let mut t = kv();
    t.body = Some(r#"{"key":"{id}","value":{seq}}"#.into());
    assert!(t.validate().is_ok());
}

#[test]
fn content_pointer_needs_a_json_body_where_it_resolves() {
    refused(
        |t| t.content_pointer = Some("/nothing".into()),
        "feeder.request.content_pointer",
        "resolves to nothing",
    );
    refused(
        |t| t.body = None,
        "feeder.request.content_pointer",
        "needs a JSON body",
    );
    refused(
        |t| t.body = Some(String::new()),
        "feeder.request.content_pointer",
        "needs a JSON body",
    );
    refused(
        |t| {
            t.headers.insert("Content-Type".into(), "text/plain".into());
        },
        "feeder.request.content_pointer",
        "needs a JSON body",
    );
    let mut t = kv();
    t.content_pointer = Some(String::new());
    assert!(t.validate().is_ok(), "the whole body is a value too");
}
