//! Pointer checks, and the streaming reads held to `Value::pointer` on the
//! parsed document.

use super::*;

#[test]
fn pointers_are_checked_as_rfc_6901_says() {
    for ok in [
        "",
        "/",
        "/a",
        "/a/0",
        "/a~1b",
        "/m~0n",
        "/~0~1",
        "/ sp ace/ü",
    ] {
        assert!(check(ok).is_ok(), "{ok}");
        assert!(Pointer::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["a", "instance", "#/a", "/a~", "/a~2", "/~x", "~0"] {
        let e = check(bad).unwrap_err();
        assert!(e.contains("not a JSON pointer"), "{bad}: {e}");
        assert_eq!(Pointer::parse(bad).unwrap_err(), e);
    }
}

const DOCS: &[&str] = &[
    r#"{"instance":"a","node":{"id":7,"f":1.5,"neg":-3,"e":1e2},"n":null,"t":true,
        "l":["x",{"y":[1,2,{"z":"deep"}]}],"a/b":"slash","m~n":"tilde","":"empty",
        "esc\u0041":"escaped key","s":"q\"uo\\te \u00e9","value":{"seq":1,"run":"r"}}"#,
    r#"{"k":1,"k":{"v":"second"}}"#,
    r#"{"k":{"v":"first"},"k":2}"#,
    r#"[10,"eleven",[12],{"13":13}]"#,
    r#""top""#,
    "42",
    "null",
    "{}",
    "[]",
    r#"{"a":1} trailing"#,
    r#"{"a":"#,
    "<html>",
    "",
    "\u{feff}{}",
];

const POINTERS: &[&str] = &[
    "",
    "/",
    "/instance",
    "/node",
    "/node/id",
    "/node/f",
    "/node/neg",
    "/node/e",
    "/n",
    "/t",
    "/l",
    "/l/0",
    "/l/1/y/2/z",
    "/l/01",
    "/l/-",
    "/l/+1",
    "/l/9",
    "/a~1b",
    "/m~0n",
    "/escA",
    "/s",
    "/value",
    "/k",
    "/k/v",
    "/0",
    "/1",
    "/2/0",
    "/3/13",
    "/missing",
    "/instance/x",
    "/a",
];

fn by_value(doc: &str, p: &str) -> Option<Value> {
    serde_json::from_str::<Value>(doc).ok()?.pointer(p).cloned()
}

#[test]
fn digests_agree_with_value_pointer_and_content_digest() {
    for doc in DOCS {
        for p in POINTERS {
            let expected = by_value(doc, p).map(|v| content_digest(&v));
            let got = Pointer::parse(p).unwrap().content_digest_in(doc.as_bytes());
            assert_eq!(got, expected, "{doc} at {p:?}");
        }
    }
    // Some of them really resolve.
    let doc = DOCS[0].as_bytes();
    let at = |p: &str| Pointer::parse(p).unwrap().content_digest_in(doc);
    assert_eq!(at("/s"), Some(text_digest("q\"uo\\te é")));
    assert_eq!(at("/value"), Some(text_digest(r#"{"run":"r","seq":1}"#)));
    assert_eq!(at("/node/e"), Some(text_digest("100.0")));
}

#[test]
fn instances_agree_with_value_pointer_for_strings_and_numbers() {
    for doc in DOCS {
        for p in POINTERS {
            let expected = match by_value(doc, p) {
                Some(Value::String(s)) => Some(s),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let got = Pointer::parse(p).unwrap().instance_in(doc.as_bytes());
            assert_eq!(got, expected, "{doc} at {p:?}");
        }
    }
}

#[test]
fn instance_from_strings_and_numbers_only() {
    let body = br#"{"instance":"a","node":{"id":7,"f":1.5},"n":null,"l":["x"],"a/b":"s"}"#;
    let at = |p: &str| Pointer::parse(p).unwrap().instance_in(body);
    assert_eq!(at("/instance").as_deref(), Some("a"));
    assert_eq!(at("/node/id").as_deref(), Some("7"));
    assert_eq!(at("/node/f").as_deref(), Some("1.5"));
    assert_eq!(at("/l/0").as_deref(), Some("x"));
    assert_eq!(at("/a~1b").as_deref(), Some("s"));
    for none in ["/missing", "/n", "/node", "/l", "", "/l/1", "/l/01"] {
        assert_eq!(at(none), None, "{none}");
    }
}

#[test]
fn a_body_that_is_not_json_names_no_instance() {
    let p = Pointer::parse("/instance").unwrap();
    for body in [
        &b""[..],
        b"<html>",
        b"{\"instance\":",
        b"\xff\xfe",
        b"null",
        b"{\"instance\":\"a\"}x",
    ] {
        assert_eq!(p.instance_in(body), None);
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        p.instance_in(deep.as_bytes()),
        None,
        "deep nesting is refused, not a crash"
    );
    assert_eq!(
        Pointer::parse("")
            .unwrap()
            .instance_in(b"\"top\"")
            .as_deref(),
        Some("top")
    );
}
