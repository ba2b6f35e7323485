//! A text with placeholders (`{id}`, `{run}`, `{seq}`), split once into
//! literal and placeholder pieces so that rendering request `seq` is a few
//! copies into a reused buffer: no parsing, formatting or allocation per
//! request.
//!
//! Syntax, chosen so that JSON bodies need no escaping: a `{` followed by a
//! letter or `_` starts a placeholder, which must be one of the three names
//! and end with `}`. Every other brace is literal (`{"k": {"n": 1}}` is
//! plain text). `{{` is a literal `{`, and `{{name}}` the literal text
//! `{name}`, for the rare template that needs one.

use handover_contract::json;

/// The values a request's placeholders stand for.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// `{run}`: the run id.
    pub run: &'a str,
    /// `{seq}`: the slot's sequence number, in decimal.
    pub seq: u64,
}

impl Vars<'_> {
    /// What validation renders with: real-looking values, the run id one
    /// that is not a JSON literal, so a bare `{run}` in JSON is caught.
    pub const SAMPLE: Vars<'static> = Vars {
        run: "sample",
        seq: 1,
    };
}

/// One piece of a parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `{id}`: `{run}-{seq:010}`, the order id (see [`crate::workload::order_id`]).
    Id,
    Run,
    Seq,
}

/// A parsed template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pieces: Vec<Piece>,
}

impl Text {
    /// Parses `src`; the error says what is wrong, for the caller to prefix
    /// with the key or flag it came from.
    pub fn parse(src: &str) -> Result<Text, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        while let Some(i) = rest.find('{') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(escaped) = after.strip_prefix('{') {
                // `{{name}}` is the literal `{name}`; any other `{{` a literal `{`.
                let n = name_len(escaped);
                if n > 0 && escaped[n..].starts_with("}}") {
                    lit.push('{');
                    lit.push_str(&escaped[..n]);
                    lit.push('}');
                    rest = &escaped[n + 2..];
                } else {
                    lit.push('{');
                    rest = escaped;
                }
                continue;
            }
            let n = name_len(after);
            if n == 0 {
                lit.push('{');
                rest = after;
                continue;
            }
            let name = &after[..n];
            if !after[n..].starts_with('}') {
                return Err(format!(
                    "{{{name} is not closed: a placeholder is {{id}}, {{run}} or {{seq}} \
                     (write {{{{ for a literal brace)"
                ));
            }
            let piece = match name {
                "id" => Piece::Id,
                "run" => Piece::Run,
                "seq" => Piece::Seq,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}}: only {{id}}, {{run}} and {{seq}} exist \
                         (write {{{{{other}}}}} for the literal text)"
                    ))
                }
            };
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(piece);
            rest = &after[n + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Text { pieces })
    }

    /// A text taken as it is, braces and all (a probe path).
    pub fn literal(s: &str) -> Text {
        Text {
            pieces: vec![Piece::Literal(s.to_string())],
        }
    }

    /// `prefix` (taken as it is), then this text: a template path under
    /// the target's base path.
    pub fn prefixed(&self, prefix: &str) -> Text {
        let mut pieces = Vec::with_capacity(self.pieces.len() + 1);
        match self.pieces.first() {
            Some(Piece::Literal(first)) => {
                pieces.push(Piece::Literal(format!("{prefix}{first}")));
                pieces.extend(self.pieces[1..].iter().cloned());
            }
            _ => {
                if !prefix.is_empty() {
                    pieces.push(Piece::Literal(prefix.to_string()));
                }
                pieces.extend(self.pieces.iter().cloned());
            }
        }
        Text { pieces }
    }

    /// The whole text when it has no placeholder: then it is the same for
    /// every request and need not be rendered at all.
    pub fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// The literal parts, for checks that hold whatever the placeholders
    /// render to (their values are `A-Z a-z 0-9 _ . : -` only).
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Literal(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// Appends the text for `vars` to `out`.
    pub fn render(&self, vars: Vars<'_>, out: &mut Vec<u8>) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Piece::Id => push_order_id(out, vars.run, vars.seq),
                Piece::Run => out.extend_from_slice(vars.run.as_bytes()),
                Piece::Seq => json::push_u64(out, vars.seq),
            }
        }
    }

    /// The text for `vars`, as a string (validation, tests).
    pub fn render_string(&self, vars: Vars<'_>) -> String {
        let mut out = Vec::new();
        self.render(vars, &mut out);
        // Literals come from a &str and placeholder values are ASCII.
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Length of the placeholder name at the start of `s`: a letter or `_`,
/// then letters, digits and `_`; 0 when `s` does not start with one.
fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => b
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .unwrap_or(b.len()),
        _ => 0,
    }
}

/// `{run}-{seq:010}` without `format!`: the same bytes as
/// [`crate::workload::order_id`].
pub fn push_order_id(out: &mut Vec<u8>, run: &str, seq: u64) {
    out.extend_from_slice(run.as_bytes());
    out.push(b'-');
    let digits = seq.checked_ilog10().map_or(1, |d| d as usize + 1);
    for _ in digits..10 {
        out.push(b'0');
    }
    json::push_u64(out, seq);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn render(src: &str, run: &str, seq: u64) -> String {
        Text::parse(src).unwrap().render_string(Vars { run, seq })
    }

    #[test]
    fn placeholders_render_in_any_position() {
        assert_eq!(render("/kv/{id}", "r1", 42), "/kv/r1-0000000042");
        assert_eq!(render("{run}/{seq}", "r1", 42), "r1/42");
        assert_eq!(render("{id}{id}", "r", 7), "r-0000000007r-0000000007");
        assert_eq!(render("{seq}", "r", 12_345_678_901), "12345678901");
        assert_eq!(render("{id}", "r", 12_345_678_901), "r-12345678901");
        assert_eq!(render("", "r", 1), "");
        assert_eq!(
            render(r#"{"key":"{id}","n":{seq},"v":{"x":[1,{}]}}"#, "r", 3),
            r#"{"key":"r-0000000003","n":3,"v":{"x":[1,{}]}}"#
        );
    }

    #[test]
    fn order_id_matches_the_workload() {
        for seq in [
            0,
            1,
            9,
            10,
            999_999_999,
            9_999_999_999,
            10_000_000_000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_order_id(&mut out, "run-x", seq);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                crate::workload::order_id("run-x", seq)
            );
        }
    }

    #[test]
    fn braces_escape_and_json_braces_stay_literal() {
        assert_eq!(render("{{", "r", 1), "{");
        assert_eq!(render("}}", "r", 1), "}}");
        assert_eq!(render("{{id}}", "r", 1), "{id}");
        assert_eq!(render("{{id}", "r", 1), "{id}");
        // `}` is literal: only `{{name}}` as a whole is an escape.
        assert_eq!(render("a{{{id}}}", "r", 1), "a{r-0000000001}}");
        assert_eq!(render("{{{id}", "r", 1), "{r-0000000001");
        assert_eq!(render("{ id }", "r", 1), "{ id }");
        assert_eq!(render("{1}{\"a\"}", "r", 1), "{1}{\"a\"}");
        assert_eq!(render("{", "r", 1), "{");
        assert_eq!(render("x{{unknown}}y", "r", 1), "x{unknown}y");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_refused() {
        let e = Text::parse("/x/{ID}").unwrap_err();
        assert!(e.contains("unknown placeholder {ID}"), "{e}");
        let e = Text::parse("{user}").unwrap_err();
        assert!(e.contains("{user}") && e.contains("{{user}}"), "{e}");
        let e = Text::parse("/x/{id").unwrap_err();
        assert!(e.contains("{id is not closed"), "{e}");
        assert!(Text::parse("{id-x}").is_err());
        assert!(Text::parse("{_}").is_err());
    }

    #[test]
    fn a_prefix_joins_the_first_literal() {
        let t = Text::parse("/kv/{id}").unwrap().prefixed("/api");
        assert_eq!(
            t.render_string(Vars { run: "r", seq: 1 }),
            "/api/kv/r-0000000001"
        );
        assert_eq!(t.literals().collect::<Vec<_>>(), vec!["/api/kv/"]);
        let t = Text::parse("{id}").unwrap().prefixed("/p/");
        assert_eq!(
            t.render_string(Vars { run: "r", seq: 1 }),
            "/p/r-0000000001"
        );
        assert_eq!(
            Text::parse("/o").unwrap().prefixed("").as_literal(),
            Some("/o")
        );
    }

    #[test]
    fn constant_texts_are_known_as_such() {
        assert_eq!(
            Text::parse("/orders").unwrap().as_literal(),
            Some("/orders")
        );
        assert_eq!(Text::parse("").unwrap().as_literal(), Some(""));
        assert_eq!(Text::parse("a{{b").unwrap().as_literal(), Some("a{b"));
        assert_eq!(Text::parse("/kv/{id}").unwrap().as_literal(), None);
        assert_eq!(Text::literal("/p/{id}").as_literal(), Some("/p/{id}"));
        let t = Text::parse("a{id}b{seq}").unwrap();
        assert_eq!(t.literals().collect::<Vec<_>>(), vec!["a", "b"]);
    }
}
