//! Passwords in URLs (`postgres://user:pass@host/db`) must not reach the
//! terminal, logs or reports, also when they sit inside a user's start
//! command. Everything the migrator prints about commands goes through here.

/// Replaces the password of every `scheme://user:password@host` in `text`
/// with `***`, and the token of `nats://token@host`; the rest of the text
/// is unchanged.
pub fn passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let nats = head[..i].ends_with("nats");
        // The authority ends at the first '/', whitespace, quote or end.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            // A NATS token is the whole user part.
            (Some(at), _) if nats => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::passwords;

    #[test]
    fn masks_passwords_only() {
        assert_eq!(
            passwords("exec app --store 'postgres://u:s3cr%40t@db:5432/x' --id b"),
            "exec app --store 'postgres://u:***@db:5432/x' --id b"
        );
        assert_eq!(
            passwords("a postgres://u:p@h/x and nats://v:q@n:4222"),
            "a postgres://u:***@h/x and nats://v:***@n:4222"
        );
        assert_eq!(
            passwords("--store nats://s3cret@n1:4222,n2:4222/ORDERS"),
            "--store nats://***@n1:4222,n2:4222/ORDERS"
        );
        for same in [
            "http://127.0.0.2:8080/health",
            "postgres://user@db/x",
            "sqlite:/tmp/e.db",
            "no url here",
            "ssh host:22 'x'",
        ] {
            assert_eq!(passwords(same), same);
        }
    }
}
