//! The `--store` URL: which backend, and where. Its password never leaves
//! this type in clear text through `Display` or `Debug`. Every scheme
//! parses whichever backends this build has, so a store left out of the
//! build is refused by name when it is opened, not as an unknown URL.
//!
//! - [`nats`]: the `nats://` URL (servers, stream, credentials).

pub mod nats;

use std::fmt;
use std::path::PathBuf;

use self::nats::NatsUrl;
use super::StoreError;

/// A parsed `--store` value.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH` (or `sqlite://PATH`): an embedded file shared by the
    /// instances on one host.
    Sqlite(PathBuf),
    /// `postgres://user:pass@host:port/db` (or `postgresql://`).
    Postgres(String),
    /// `nats://host:4222[,host2…]/STREAM`: a JetStream stream, on one
    /// server or a cluster.
    Nats(NatsUrl),
}

impl StoreUrl {
    /// Parses a store URL; the error names the accepted forms.
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(StoreError::Config(
                    "sqlite store URL has no path (expected sqlite:PATH)".into(),
                ));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            url::Url::parse(raw).map_err(|e| {
                StoreError::Config(format!("invalid postgres URL {}: {e}", redact(raw)))
            })?;
            return Ok(StoreUrl::Postgres(raw.to_string()));
        }
        if let Some(rest) = raw.strip_prefix("nats://") {
            return NatsUrl::parse(rest)
                .map(StoreUrl::Nats)
                .map_err(|e| StoreError::Config(format!("invalid nats URL: {e}")));
        }
        Err(StoreError::Config(format!(
            "unsupported store URL {:?}: expected sqlite:PATH, postgres://user:pass@host:port/db \
             or nats://host:4222[,host2…]/STREAM",
            redact(raw)
        )))
    }

    /// The backend's name, which is also the cargo feature that builds it.
    pub fn scheme(&self) -> &'static str {
        match self {
            StoreUrl::Sqlite(_) => "sqlite",
            StoreUrl::Postgres(_) => "postgres",
            StoreUrl::Nats(_) => "nats",
        }
    }

    /// The full URL, password included: for the driver only, never for output.
    pub fn expose(&self) -> String {
        match self {
            StoreUrl::Sqlite(p) => format!("sqlite:{}", p.display()),
            StoreUrl::Postgres(u) => u.clone(),
            // The NATS client takes the credentials apart from the servers.
            StoreUrl::Nats(u) => u.to_string(),
        }
    }
}

/// Replaces the password of a URL-looking string with `***`.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            if u.set_password(Some("***")).is_ok() {
                u.to_string()
            } else {
                "<unprintable URL>".into()
            }
        }
        Ok(u) => u.to_string(),
        // Not parseable: it may still hold a secret, so show only the scheme.
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://<redacted>"),
            None => raw.chars().take(16).collect::<String>() + "…",
        },
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreUrl::Postgres(u) => f.write_str(&redact(u)),
            StoreUrl::Nats(u) => u.fmt(f),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_forms() {
        assert_eq!(
            StoreUrl::parse("sqlite:./events.db").expect("plain"),
            StoreUrl::Sqlite("./events.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/e.db").expect("slashes"),
            StoreUrl::Sqlite("/tmp/e.db".into())
        );
        assert!(StoreUrl::parse("sqlite:").is_err());
    }

    #[test]
    fn rejects_unknown_schemes() {
        let err = StoreUrl::parse("mysql://root:hunter2@db/x").expect_err("mysql");
        let msg = err.to_string();
        assert!(msg.contains("sqlite:PATH"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn nats_urls_parse_and_hide_their_token() {
        let url =
            StoreUrl::parse("nats://s3cret@127.0.0.1:4222,127.0.0.1:4223/ORDERS").expect("nats");
        assert_eq!(
            url.to_string(),
            "nats://***@127.0.0.1:4222,127.0.0.1:4223/ORDERS"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let err = StoreUrl::parse("nats://s3cret@h:4222").expect_err("no stream");
        assert!(err.to_string().contains("no stream"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn postgres_password_never_printed() {
        let url = StoreUrl::parse("postgres://app:s3cret@127.0.0.1:5432/handover").expect("pg");
        assert_eq!(
            url.to_string(),
            "postgres://app:***@127.0.0.1:5432/handover"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.expose().contains("s3cret"));
    }
}
