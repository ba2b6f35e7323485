//! `nats://[user:pass@|token@]host[:port][,host2[:port]…]/STREAM[?replicas=N]`:
//! the servers to try, the stream that holds the log, and the credentials,
//! which never leave this type in clear text through `Display` or `Debug`.

use std::fmt;

/// The port a host without one is reached on.
const DEFAULT_PORT: u16 = 4222;

/// A parsed NATS store URL.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    /// `host:port` of each server given, in order (the client tries them all).
    pub servers: Vec<String>,
    /// The JetStream stream that holds the log; also the subjects' prefix.
    pub stream: String,
    pub auth: NatsAuth,
    /// Copies of each event the stream keeps (created with this many; an
    /// existing stream keeps its own): `?replicas=N`, else 3 when three or
    /// more servers are given and 1 otherwise.
    pub replicas: usize,
}

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum NatsAuth {
    None,
    UserPassword { user: String, password: String },
    Token(String),
}

impl NatsUrl {
    /// Parses the part after `nats://`; the error says what is wrong
    /// without repeating a credential.
    pub fn parse(rest: &str) -> Result<Self, String> {
        let (authority, path) = rest
            .split_once('/')
            .ok_or("no stream: expected nats://host:4222[,host2…]/STREAM")?;
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let auth = match userinfo {
            None => NatsAuth::None,
            Some(u) => match u.split_once(':') {
                Some((user, password)) if !user.is_empty() => NatsAuth::UserPassword {
                    user: decode(user)?,
                    password: decode(password)?,
                },
                Some(_) => return Err("user name is empty".into()),
                None if u.is_empty() => return Err("empty credentials before '@'".into()),
                None => NatsAuth::Token(decode(u)?),
            },
        };
        let servers = hosts
            .split(',')
            .map(server)
            .collect::<Result<Vec<_>, _>>()?;
        let stream = path.strip_suffix('/').unwrap_or(path);
        if stream.is_empty() {
            return Err("no stream: expected nats://host:4222[,host2…]/STREAM".into());
        }
        if !stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "stream name {stream:?} may only hold letters, digits, '_' and '-'"
            ));
        }
        let mut replicas = if servers.len() >= 3 { 3 } else { 1 };
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("replicas", n)) => {
                    replicas = n
                        .parse()
                        .ok()
                        .filter(|r| (1..=5).contains(r))
                        .ok_or_else(|| format!("replicas={n:?}: expected 1 to 5"))?;
                }
                _ => {
                    return Err(format!(
                        "unknown query parameter {pair:?} (known: replicas)"
                    ))
                }
            }
        }
        Ok(NatsUrl {
            servers,
            stream: stream.to_string(),
            auth,
            replicas,
        })
    }
}

/// One `host[:port]` of the list, as `host:port`.
fn server(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("empty host in the server list".into());
    }
    // `[::1]:4222` keeps its brackets; a bare host gets the default port.
    let (host, port) = match raw.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (raw, None),
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(format!("bad host {raw:?}"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("bad port in {raw:?}"))?,
    };
    Ok(format!("{host}:{port}"))
}

/// Percent-decodes a credential (a password may hold `@` or `:` as `%40`, `%3A`).
fn decode(raw: &str) -> Result<String, String> {
    url::form_urlencoded::parse(format!("x={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| "credentials cannot be decoded".to_string())
}

impl fmt::Display for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nats://")?;
        match &self.auth {
            NatsAuth::None => {}
            NatsAuth::UserPassword { user, .. } => write!(f, "{user}:***@")?,
            NatsAuth::Token(_) => f.write_str("***@")?,
        }
        write!(f, "{}/{}", self.servers.join(","), self.stream)
    }
}

impl fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsUrl({self}, replicas {})", self.replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_server_list_and_the_stream() {
        let u = NatsUrl::parse("n1:4222,n2,[::1]:4300/ORDERS").expect("parse");
        assert_eq!(u.servers, ["n1:4222", "n2:4222", "[::1]:4300"]);
        assert_eq!(u.stream, "ORDERS");
        assert_eq!(u.replicas, 3);
        assert!(u.auth == NatsAuth::None);
        let one = NatsUrl::parse("127.0.0.1:4222/S?replicas=1").expect("parse");
        assert_eq!((one.servers.len(), one.replicas), (1, 1));
    }

    #[test]
    fn credentials_are_parsed_and_never_printed() {
        let u = NatsUrl::parse("app:s%40cret@h:4222/S").expect("parse");
        assert!(
            u.auth
                == NatsAuth::UserPassword {
                    user: "app".into(),
                    password: "s@cret".into()
                }
        );
        assert_eq!(u.to_string(), "nats://app:***@h:4222/S");
        let t = NatsUrl::parse("t0ken-value@h/S").expect("parse");
        assert!(t.auth == NatsAuth::Token("t0ken-value".into()));
        for shown in [t.to_string(), format!("{t:?}"), format!("{u:?}")] {
            assert!(
                !shown.contains("t0ken") && !shown.contains("cret"),
                "{shown}"
            );
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (raw, want) in [
            ("h:4222", "no stream"),
            ("h:4222/", "no stream"),
            ("h:4222,/S", "empty host"),
            ("h:99999/S", "bad port"),
            ("h:0/S", "bad port"),
            ("h/a.b", "stream name"),
            ("h/S?replicas=0", "replicas"),
            ("h/S?foo=1", "unknown query parameter"),
            (":pw@h/S", "user name is empty"),
        ] {
            let err = NatsUrl::parse(raw).expect_err(raw);
            assert!(err.contains(want), "{raw}: {err}");
        }
    }
}
