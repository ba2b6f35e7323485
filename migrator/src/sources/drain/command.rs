//! `drain.kind = "command"`: a command of the user's prints a number that
//! stops changing once A is unused (a connection count from `ss`, a request
//! counter from the service's admin tool).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{DrainSource, Usage};
use crate::process::run_shell;
use crate::sources::{SourceError, READ_TIMEOUT};

pub struct CommandUsage {
    command: String,
    timeout: Duration,
}

impl CommandUsage {
    pub fn new(command: String) -> CommandUsage {
        CommandUsage {
            command,
            timeout: READ_TIMEOUT,
        }
    }
}

/// The number on the first non-empty line of `out`.
pub fn parse(out: &str) -> Result<u64, String> {
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("printed nothing (expected a number)")?;
    line.parse()
        .map_err(|_| format!("printed {line:?}, not a whole number"))
}

impl DrainSource for CommandUsage {
    fn counter(&self) -> String {
        "command output".into()
    }

    fn describe(&self) -> String {
        format!("command: `{}`", crate::redact::passwords(&self.command))
    }

    fn read<'a>(
        &'a self,
        _live: Option<&'a feeder::Live>,
    ) -> BoxFuture<'a, Result<Usage, SourceError>> {
        async move {
            let out = run_shell(&self.command, self.timeout)
                .await
                .map_err(|e| SourceError::command("drain.command", e))?;
            let total = parse(&out).map_err(|what| SourceError::Command {
                key: "drain.command".into(),
                what,
            })?;
            Ok(Usage::Counting {
                total: total as f64,
                in_flight: 0,
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
    fn reads_one_number() {
        assert_eq!(parse("\n 17 \n"), Ok(17));
        assert!(parse("").unwrap_err().contains("nothing"));
        assert!(parse("seventeen")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse("-3").is_err());
    }

    #[tokio::test]
    async fn a_failing_command_names_the_key() {
        let e = CommandUsage::new("exit 7".into())
            .read(None)
            .await
            .unwrap_err();
        assert_eq!(e.key(), "drain.command");
    }
}
