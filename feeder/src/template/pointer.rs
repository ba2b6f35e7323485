//! RFC 6901 JSON pointers: the check that refuses a malformed one before a
//! run starts, and reading the instance name out of a reply body.
//!
//! Lookup itself is serde_json's [`serde_json::Value::pointer`], which
//! implements the RFC; this module only adds what it leaves out (saying
//! *why* a pointer is malformed, and what a found value means here).

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

/// The instance a reply body names at `pointer`: a string as it is, a
/// number as written; anything else (missing, null, an object, a body that
/// is not JSON) names no instance. Never fails: a reply is data, not input.
pub fn instance_in(body: &[u8], pointer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.pointer(pointer)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
        }
        for bad in ["a", "instance", "#/a", "/a~", "/a~2", "/~x", "~0"] {
            let e = check(bad).unwrap_err();
            assert!(e.contains("not a JSON pointer"), "{bad}: {e}");
        }
    }

    #[test]
    fn instance_from_strings_and_numbers_only() {
        let body = br#"{"instance":"a","node":{"id":7,"f":1.5},"n":null,"l":["x"],"a/b":"s"}"#;
        assert_eq!(instance_in(body, "/instance").as_deref(), Some("a"));
        assert_eq!(instance_in(body, "/node/id").as_deref(), Some("7"));
        assert_eq!(instance_in(body, "/node/f").as_deref(), Some("1.5"));
        assert_eq!(instance_in(body, "/l/0").as_deref(), Some("x"));
        assert_eq!(instance_in(body, "/a~1b").as_deref(), Some("s"));
        for none in ["/missing", "/n", "/node", "/l", "", "/l/1", "/l/01"] {
            assert_eq!(instance_in(body, none), None, "{none}");
        }
    }

    #[test]
    fn a_body_that_is_not_json_names_no_instance() {
        for body in [&b""[..], b"<html>", b"{\"instance\":", b"\xff\xfe", b"null"] {
            assert_eq!(instance_in(body, "/instance"), None);
        }
        assert_eq!(instance_in(b"\"top\"", "").as_deref(), Some("top"));
    }
}
