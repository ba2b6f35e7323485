//! The `[reconcile]` query and URL of `kind = "sql"` as the plan gives
//! them: which URLs are accepted, where `{run}` is, and the SQL that binds
//! it as a parameter (never pasted in: a run id cannot change what a query
//! does).

use super::super::{SqlListing, RUN};

impl SqlListing {
    /// See [`super::ReconcilePlan::validate`].
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: &str, m: String| Err((key.to_string(), m));
        match (&self.url, &self.url_env) {
            (Some(_), Some(_)) => {
                return err("reconcile.url", "give url or url_env, not both".into())
            }
            (None, None) => {
                return err(
                    "reconcile.url",
                    "missing: postgres://user@host/db or sqlite:PATH (or url_env naming the variable that holds it)".into(),
                )
            }
            (Some(url), None) => check_url(url).map_err(|m| ("reconcile.url".to_string(), m))?,
            (None, Some(var)) => {
                let ok = !var.is_empty()
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !var.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    return err(
                        "reconcile.url_env",
                        format!("{var:?} is not an environment variable name"),
                    );
                }
            }
        }
        if self.query.trim().is_empty() {
            return err(
                "reconcile.query",
                "is empty (it must return the id column, and optionally the content)".into(),
            );
        }
        placeholders(&self.query).map_err(|m| ("reconcile.query".to_string(), m))?;
        Ok(())
    }
}

/// `postgres://…`, `postgresql://…` or `sqlite:PATH`.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let shown = crate::redact::passwords(url);
    if let Some(path) = url.strip_prefix("sqlite:") {
        if path.trim_start_matches("//").is_empty() {
            return Err("sqlite: has no path (expected sqlite:PATH)".into());
        }
        return Ok(());
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return url::Url::parse(url)
            .map(|_| ())
            .map_err(|e| format!("{shown} is not a URL ({e})"));
    }
    Err(format!(
        "{shown:?}: expected postgres://user@host:port/db or sqlite:PATH"
    ))
}

/// Where `{…}` placeholders are in `query`, outside quoted strings and
/// identifiers; only `{run}` exists, and it may not be inside quotes (it is
/// bound as a parameter: write `{run} || '-%'`, not `'{run}-%'`).
pub(super) fn placeholders(query: &str) -> Result<Vec<usize>, String> {
    let mut at = Vec::new();
    let mut quote: Option<char> = None;
    for (i, c) in query.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '{') if query[i..].starts_with(RUN) => {
                return Err(format!(
                    "{RUN} is inside a quoted string; it is bound as a parameter, so write e.g. `id LIKE {RUN} || '-%'`"
                ))
            }
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{') => {
                if query[i..].starts_with(RUN) {
                    at.push(i);
                } else if let Some(name) = placeholder_name(&query[i..]) {
                    return Err(format!("unknown placeholder {{{name}}} (the only one is {RUN})"));
                }
            }
            _ => {}
        }
    }
    Ok(at)
}

/// `name` of a `{name}` at the start of `text`, if it is one.
fn placeholder_name(text: &str) -> Option<&str> {
    let end = text.find('}')?;
    let name = &text[1..end];
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

/// `query` with each `{run}` replaced by `param`.
pub(super) fn bind_run(query: &str, param: &str) -> String {
    let Ok(at) = placeholders(query) else {
        return query.to_string();
    };
    let mut out = String::with_capacity(query.len() + 8);
    let mut last = 0;
    for i in at {
        out.push_str(&query[last..i]);
        out.push_str(param);
        last = i + RUN.len();
    }
    out.push_str(&query[last..]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sources::reconcile::sql::tests::listing;

    #[test]
    fn run_is_a_parameter_and_only_outside_quotes() {
        let q = "SELECT id, body FROM orders WHERE id LIKE {run} || '-%' AND note <> '{x}'";
        assert_eq!(
            bind_run(q, "$1::text"),
            "SELECT id, body FROM orders WHERE id LIKE $1::text || '-%' AND note <> '{x}'"
        );
        assert_eq!(bind_run("SELECT id FROM t", "?1"), "SELECT id FROM t");
        assert!(placeholders("SELECT id FROM t WHERE id LIKE '{run}-%'")
            .unwrap_err()
            .contains("inside a quoted string"));
        assert!(placeholders("SELECT id FROM t WHERE r = {runid}")
            .unwrap_err()
            .contains("unknown placeholder {runid}"));
        assert_eq!(
            placeholders("SELECT '{', \"{run}x\" FROM t WHERE a = '{}'").map_err(|_| ()),
            Err(())
        );
        assert_eq!(
            placeholders("SELECT json_build_object('a', 1)").unwrap(),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn plans_are_validated_naming_the_key() {
        let key = |l: SqlListing| l.validate().unwrap_err().0;
        assert_eq!(key(listing(None, None, "SELECT 1")), "reconcile.url");
        assert_eq!(
            key(listing(Some("sqlite:a.db"), Some("DB"), "SELECT 1")),
            "reconcile.url"
        );
        assert_eq!(
            key(listing(Some("mysql://u:p@h/db"), None, "SELECT 1")),
            "reconcile.url"
        );
        assert_eq!(
            key(listing(Some("sqlite:"), None, "SELECT 1")),
            "reconcile.url"
        );
        assert_eq!(
            key(listing(None, Some("1BAD-NAME"), "SELECT 1")),
            "reconcile.url_env"
        );
        assert_eq!(
            key(listing(Some("sqlite:a.db"), None, "  ")),
            "reconcile.query"
        );
        assert_eq!(
            key(listing(
                Some("sqlite:a.db"),
                None,
                "SELECT id FROM t WHERE x = {seq}"
            )),
            "reconcile.query"
        );
        for ok in [
            listing(Some("sqlite:a.db"), None, "SELECT id FROM t"),
            listing(
                Some("postgres://u:pw@h:5432/db"),
                None,
                "SELECT id FROM t WHERE r = {run}",
            ),
            listing(None, Some("ORDERS_DB_URL"), "SELECT id FROM t"),
        ] {
            assert_eq!(ok.validate(), Ok(()), "{ok:?}");
        }
        let (_, m) = listing(Some("ftp://u:hunter2@h/"), None, "SELECT 1")
            .validate()
            .unwrap_err();
        assert!(!m.contains("hunter2"), "{m}");
    }
}
