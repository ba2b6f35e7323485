//! Why a host could not be checked, told apart from ssh's own words: each
//! cause has its own fix, and none of them may turn into a hang or a
//! prompt (the ssh invocation is always `BatchMode=yes`).

/// A host preflight could not read: the run is refused (exit 2) — a host
/// the migrator cannot reach now is one it cannot stop or start later.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Nothing answers at the address: the operator checks the host is up,
    /// the address is right and port 22 is open.
    #[error("{host}: does not answer over ssh ({detail}); check the address, that the host is up and that sshd listens")]
    Unreachable { host: String, detail: String },
    /// The host key differs from the known one: a rebuilt host, or someone
    /// in between. The operator must decide; nothing is accepted silently.
    #[error("{host}: its ssh host key has CHANGED since it was recorded ({detail}); if the host was rebuilt, remove the old key (ssh-keygen -R HOST) and check the new fingerprint")]
    HostKeyChanged { host: String, detail: String },
    /// The host key is not known yet and `[ssh] host_keys = "strict"`.
    #[error("{host}: its ssh host key is not known ({detail}); record it after checking its fingerprint (ssh-keyscan HOST >> known_hosts), or set ssh.host_keys = \"accept-new\"")]
    HostKeyUnknown { host: String, detail: String },
    /// The key was not accepted: the operator installs it (ssh-copy-id).
    #[error(
        "{host}: ssh refused the key ({detail}); install it with ssh-copy-id or set ssh.identity"
    )]
    AuthRefused { host: String, detail: String },
    /// ssh ran but the check did not (no `sh`, a broken shell profile).
    #[error("{host}: the host check could not run: {detail}")]
    Probe { host: String, detail: String },
}

/// Tells why ssh (exit `code`, `stderr`) did not run the probe.
pub fn classify(host: &str, code: Option<i32>, stderr: &str) -> HostError {
    let detail = last_line(stderr);
    let host = host.to_string();
    let has = |s: &str| {
        stderr
            .to_ascii_lowercase()
            .contains(&s.to_ascii_lowercase())
    };
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("host key for") && has("has changed") {
        HostError::HostKeyChanged { host, detail }
    } else if has("Host key verification failed")
        || has("No matching host key")
        || has("is not known")
    {
        HostError::HostKeyUnknown { host, detail }
    } else if has("Permission denied") || has("Too many authentication failures") {
        HostError::AuthRefused { host, detail }
    } else if code == Some(255) {
        HostError::Unreachable { host, detail }
    } else {
        HostError::Probe {
            host,
            detail: match code {
                Some(c) => format!("exit {c}: {detail}"),
                None => format!("killed: {detail}"),
            },
        }
    }
}

/// The last non-empty line of ssh's stderr (the cause, without its banner).
fn last_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("@@@"))
        .unwrap_or("no message");
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_causes_apart() {
        let changed = "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                       @@@@@@@@@@@\nHost key for 192.0.2.12 has changed and you have requested strict checking.\n\
                       Host key verification failed.\n";
        assert!(matches!(
            classify("b", Some(255), changed),
            HostError::HostKeyChanged { .. }
        ));
        let unknown =
            "No ED25519 host key is known for 192.0.2.11 and you have requested strict checking.\n\
                       Host key verification failed.\n";
        assert!(matches!(
            classify("a", Some(255), unknown),
            HostError::HostKeyUnknown { .. }
        ));
        let denied = "root@192.0.2.11: Permission denied (publickey).\n";
        assert!(matches!(
            classify("a", Some(255), denied),
            HostError::AuthRefused { .. }
        ));
        let refused = "ssh: connect to host 192.0.2.99 port 22: Connection refused\n";
        let e = classify("a", Some(255), refused);
        assert!(matches!(e, HostError::Unreachable { .. }));
        assert!(e.to_string().contains("Connection refused"), "{e}");
        assert!(matches!(
            classify("a", Some(2), "sh: 1: syntax error\n"),
            HostError::Probe { .. }
        ));
    }
}
