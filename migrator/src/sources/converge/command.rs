//! `converge.kind = "command"`: a command of the user's prints
//! `APPLIED HEAD` on one line (`psql -Atc "select …"`, `redis-cli info`
//! through `awk`): anything a shell can read becomes a converge signal.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{ConvergeSource, Positions};
use crate::process::run_shell;
use crate::sources::{SourceError, READ_TIMEOUT};

pub struct CommandPositions {
    command: String,
    timeout: Duration,
}

impl CommandPositions {
    pub fn new(command: String) -> CommandPositions {
        CommandPositions {
            command,
            timeout: READ_TIMEOUT,
        }
    }
}

/// `APPLIED HEAD` from the first non-empty line of `out`.
pub fn parse(out: &str) -> Result<(u64, u64), String> {
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("printed nothing (expected `APPLIED HEAD`)")?;
    let mut words = line.split_whitespace();
    let mut number = |what: &str| -> Result<u64, String> {
        let w = words
            .next()
            .ok_or_else(|| format!("printed {line:?}: no {what} (expected `APPLIED HEAD`)"))?;
        w.parse()
            .map_err(|_| format!("printed {line:?}: {w:?} is not a whole number ({what})"))
    };
    let applied = number("APPLIED")?;
    let head = number("HEAD")?;
    if words.next().is_some() {
        return Err(format!("printed {line:?}: expected exactly `APPLIED HEAD`"));
    }
    Ok((applied, head))
}

impl ConvergeSource for CommandPositions {
    fn describe(&self) -> String {
        format!(
            "command: `{}` (prints APPLIED HEAD)",
            crate::redact::passwords(&self.command)
        )
    }

    fn read(&self) -> BoxFuture<'_, Result<Positions, SourceError>> {
        async move {
            let out = run_shell(&self.command, self.timeout)
                .await
                .map_err(|e| SourceError::command("converge.command", e))?;
            let (applied, head) = parse(&out).map_err(|what| SourceError::Command {
                key: "converge.command".into(),
                what,
            })?;
            Ok(Positions {
                applied,
                head,
                ready: true,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_applied_and_head() {
        assert_eq!(parse("10 12\n"), Ok((10, 12)));
        assert_eq!(parse("\n  7\t7  \nignored"), Ok((7, 7)));
    }

    #[test]
    fn anything_else_is_a_clear_error() {
        for (out, needle) in [
            ("", "printed nothing"),
            ("10", "no HEAD"),
            ("ten 12", "not a whole number"),
            ("10 -1", "not a whole number"),
            ("1 2 3", "exactly"),
        ] {
            let e = parse(out).unwrap_err();
            assert!(e.contains(needle), "{out:?}: {e}");
        }
    }

    #[tokio::test]
    async fn a_real_command_is_read_and_its_failure_named() {
        let s = CommandPositions::new("echo 5 9".into());
        let p = s.read().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.applied, p.head), (5, 9));
        let e = CommandPositions::new("echo nope >&2; exit 3".into())
            .read()
            .await
            .unwrap_err();
        assert_eq!(e.key(), "converge.command");
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
