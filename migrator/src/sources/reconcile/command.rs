//! `reconcile.kind = "command"`: a command of the user's prints what the
//! service stores, one id per line, optionally `id<TAB>content` — `psql -Atc
//! "select id, body from orders"`, `redis-cli --scan`, `aws dynamodb scan |
//! jq -r …`: anything a shell can list becomes a reconcile source.
//!
//! Its output is streamed line by line into the ledger (never collected);
//! its stderr is kept only as a short tail for the error message. The
//! command runs with `sh -c`; `{run}` is replaced by the run id, quoted for
//! the shell, and `HANDOVER_RUN` holds it too.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use handover_contract::order::text_digest;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdout, Command};

use super::lines::{first_line, pump, LineError, PumpError, MAX_LINE};
use super::{StoredOrders, Streamed, RUN};
use crate::process::ProcessError;
use crate::reconcile::ledger::{Ledger, OrderView};
use crate::reconcile::{ReconcileError, ReconcileOptions};
use crate::sources::SourceError;

const KEY: &str = "reconcile.command";

/// Bytes of stderr kept for the message when the command fails.
const STDERR_TAIL: usize = 2048;

/// A command that lists the stored ids.
pub struct CommandOrders {
    command: String,
    idle: Duration,
}

/// A started listing command, its stderr being collected (its stdout is
/// handed out by [`CommandOrders::start`]).
struct Listing {
    child: Child,
    stderr: tokio::task::JoinHandle<String>,
    /// The command as run, password masked.
    shown: String,
}

impl CommandOrders {
    pub fn new(command: &str, opts: &ReconcileOptions) -> CommandOrders {
        CommandOrders {
            command: command.to_string(),
            // A listing may sort or scan before its first line.
            idle: opts.request_timeout.max(Duration::from_secs(60)),
        }
    }

    /// The command with `{run}` replaced by the run id, quoted for `sh`.
    fn text(&self, run: Option<&str>) -> String {
        match run {
            Some(run) => self.command.replace(RUN, &shell_quote(run)),
            None => self.command.clone(),
        }
    }

    fn start(&self, run: Option<&str>) -> Result<(Listing, ChildStdout), SourceError> {
        let text = self.text(run);
        let shown = crate::redact::passwords(&text);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&text)
            .env("HANDOVER_RUN", run.unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| {
                SourceError::command(
                    KEY,
                    ProcessError::Spawn {
                        cmd: shown.clone(),
                        source,
                    },
                )
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(SourceError::Command {
                key: KEY.into(),
                what: format!("`{shown}`: no pipes to read"),
            });
        };
        let listing = Listing {
            child,
            stderr: tokio::spawn(tail(stderr)),
            shown,
        };
        Ok((listing, stdout))
    }

    async fn stream_lines(
        &self,
        ledger: Ledger,
        run: Option<&str>,
    ) -> Result<(Ledger, u64), ReconcileError> {
        let (listing, stdout) = self.start(run)?;
        let read = pump(chunks(stdout), self.idle, ledger, take_line).await;
        let read = read.map_err(|e| match e {
            PumpError::Idle(idle) => ReconcileError::Broke {
                source_desc: self.describe(),
                reason: format!("no output for {idle:?}"),
            },
            PumpError::Broke(reason) => ReconcileError::Broke {
                source_desc: self.describe(),
                reason,
            },
            PumpError::Line(e) => ReconcileError::Source(line_error(&listing.shown, e)),
            PumpError::Internal(reason) => ReconcileError::Internal(reason),
        })?;
        listing.finish(self.idle).await?;
        Ok(read)
    }

    async fn check_first(&self, run: Option<&str>) -> Result<String, SourceError> {
        let (listing, stdout) = self.start(run)?;
        let line = first_line::<_, String>(chunks(stdout), self.idle)
            .await
            .map_err(|e| match e {
                PumpError::Line(e) => line_error(&listing.shown, e),
                PumpError::Idle(idle) => SourceError::Command {
                    key: KEY.into(),
                    what: format!("`{}` printed nothing for {idle:?}", listing.shown),
                },
                PumpError::Broke(reason) | PumpError::Internal(reason) => SourceError::Command {
                    key: KEY.into(),
                    what: format!("`{}`: {reason}", listing.shown),
                },
            })?;
        let Some(line) = line else {
            listing.finish(self.idle).await?;
            return Ok("the command ran and listed no ids yet".into());
        };
        let (id, content) = parse_line(&line)
            .map_err(|error| line_error(&listing.shown, LineError::Bad { line: 1, error }))?;
        // The rest is not needed: the command is killed when `listing` drops.
        Ok(format!(
            "first line: id {id:?}{}",
            if content.is_some() {
                " with content"
            } else {
                " (ids only)"
            }
        ))
    }
}

impl Listing {
    /// Waits for the command to exit; a failure is an error with its stderr.
    async fn finish(mut self, idle: Duration) -> Result<(), SourceError> {
        let status = tokio::time::timeout(idle, self.child.wait())
            .await
            .map_err(|_| {
                SourceError::command(
                    KEY,
                    ProcessError::Timeout {
                        cmd: self.shown.clone(),
                        timeout: idle,
                    },
                )
            })?
            .map_err(|source| {
                SourceError::command(
                    KEY,
                    ProcessError::Spawn {
                        cmd: self.shown.clone(),
                        source,
                    },
                )
            })?;
        if status.success() {
            return Ok(());
        }
        let stderr = self.stderr.await.unwrap_or_default();
        Err(SourceError::command(
            KEY,
            ProcessError::Failed {
                cmd: self.shown,
                status: status.to_string(),
                stderr: crate::redact::passwords(&stderr),
            },
        ))
    }
}

/// `id` or `id<TAB>content`; the id is trimmed of spaces, the content kept
/// exactly.
fn parse_line(line: &[u8]) -> Result<(&str, Option<&str>), String> {
    let text = std::str::from_utf8(line).map_err(|_| "is not UTF-8 text".to_string())?;
    let (id, content) = match text.split_once('\t') {
        Some((id, content)) => (id.trim_matches(' '), Some(content)),
        None => (text.trim(), None),
    };
    if id.is_empty() {
        return Err(format!("{text:?} has no id before its tab"));
    }
    Ok((id, content))
}

/// One line of output into the ledger.
fn take_line(line: &[u8], ledger: &mut Ledger) -> Result<(), String> {
    let (id, content) = parse_line(line)?;
    ledger.observe(OrderView {
        id,
        user_id: None,
        items_digest: content.map(text_digest),
    });
    Ok(())
}

fn line_error(shown: &str, e: LineError<String>) -> SourceError {
    let what = match e {
        LineError::TooLong { line } => {
            format!("`{shown}`: line {line} is longer than {MAX_LINE} bytes")
        }
        LineError::Bad { line, error } => {
            format!("`{shown}`: line {line} {error} (expected an id per line, or id<TAB>content)")
        }
    };
    SourceError::Command {
        key: KEY.into(),
        what,
    }
}

/// The output as a stream of chunks.
fn chunks<R: AsyncRead + Unpin + Send + 'static>(
    out: R,
) -> std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>> {
    Box::pin(futures::stream::unfold(Some(out), |out| async move {
        let mut out = out?;
        let mut buf = vec![0u8; 64 * 1024];
        match out.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(out)))
            }
            Err(e) => Some((Err(e.to_string()), None)),
        }
    }))
}

/// The last [`STDERR_TAIL`] bytes of `err`, read to its end.
async fn tail(mut err: tokio::process::ChildStderr) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = err.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    let from = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[from..]).into_owned()
}

/// `'…'` with every `'` written `'\''`: safe inside `sh -c`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl StoredOrders for CommandOrders {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn describe(&self) -> String {
        format!(
            "command `{}` (one id per line)",
            crate::redact::passwords(&self.command)
        )
    }

    fn check<'a>(&'a self, run: Option<&'a str>) -> BoxFuture<'a, Result<String, SourceError>> {
        self.check_first(run).boxed()
    }

    fn stream<'a>(&'a self, ledger: Ledger, run: Option<&'a str>) -> Streamed<'a> {
        self.stream_lines(ledger, run).boxed()
    }

    fn run_key(&self) -> Option<&'static str> {
        self.command.contains(RUN).then_some(KEY)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn source(cmd: &str) -> CommandOrders {
        CommandOrders::new(cmd, &ReconcileOptions::default())
    }

    fn ledger(ids: &[&str]) -> Ledger {
        super::super::acked_with(ids, "v1")
    }

    async fn stream_err(cmd: &str) -> ReconcileError {
        match source(cmd).stream(ledger(&[]), None).await {
            Err(e) => e,
            Ok((_, n)) => panic!("`{cmd}` read {n} ids"),
        }
    }

    #[test]
    fn lines_are_an_id_and_an_optional_content() {
        assert_eq!(parse_line(b"a-1"), Ok(("a-1", None)));
        assert_eq!(parse_line(b"  a-1  "), Ok(("a-1", None)));
        assert_eq!(parse_line(b"a-1\tv 1\tx "), Ok(("a-1", Some("v 1\tx "))));
        assert_eq!(parse_line(b"a-1\t"), Ok(("a-1", Some(""))));
        assert!(parse_line(b"\tv1").unwrap_err().contains("no id"));
        assert!(parse_line(b"\xff\xfe").unwrap_err().contains("UTF-8"));
    }

    #[tokio::test]
    async fn ids_and_contents_are_streamed_into_the_ledger() {
        let s = source(r"printf 'r-1\tv1\nr-2\tv2\r\n\nr-4\n'");
        let (ledger, n) = s
            .stream(ledger(&["r-1", "r-2", "r-3"]), None)
            .await
            .unwrap();
        assert_eq!(n, 3);
        let r = ledger.finish(10);
        assert_eq!(
            (r.ok, r.mismatched, r.lost, r.unexpected),
            (1, 1, 1, 1),
            "{r:#?}"
        );
        assert_eq!(r.ids.lost, ["r-3"]);
        assert_eq!(r.ids.unexpected, ["r-4"]);
        assert_eq!(r.content_unchecked, 0);
        let said = s.check(None).await.unwrap();
        assert_eq!(said, "first line: id \"r-1\" with content");
    }

    #[tokio::test]
    async fn the_run_is_quoted_for_the_shell_and_in_the_environment() {
        let s = source("printf '%s\\n' {run} \"$HANDOVER_RUN-x\"");
        assert_eq!(s.run_key(), Some(KEY));
        let (ledger, n) = s
            .stream(ledger(&["it's; rm -rf /"]), Some("it's; rm -rf /"))
            .await
            .unwrap();
        assert_eq!(n, 2);
        let r = ledger.finish(10);
        assert_eq!(r.ok, 1, "{r:#?}");
        assert_eq!(r.ids.unexpected, ["it's; rm -rf /-x"]);
        assert_eq!(source("echo a").run_key(), None);
    }

    #[tokio::test]
    async fn a_failing_command_or_a_bad_line_names_the_key() {
        let err = stream_err("echo a; echo 'no such table' >&2; exit 3").await;
        assert!(err.is_usage());
        let text = err.to_string();
        assert!(text.starts_with("reconcile.command: `echo a;"), "{text}");
        assert!(text.contains("no such table"), "{text}");
        let err = stream_err(r"printf 'a\n\tv\n'").await.to_string();
        assert!(err.contains("line 2") && err.contains("no id"), "{err}");
        let err = stream_err(r"printf 'a\n\377\n'").await.to_string();
        assert!(err.contains("line 2 is not UTF-8"), "{err}");
        let err = source("exit 4").check(None).await.unwrap_err();
        assert_eq!(err.key(), KEY);
        assert_eq!(
            source("true").check(None).await.unwrap(),
            "the command ran and listed no ids yet"
        );
        let err = source("printf '\\tv\\n'").check(None).await.unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[tokio::test]
    async fn a_password_in_the_command_or_its_stderr_is_masked() {
        let cmd = "echo 'cannot reach postgres://app:hunter2@db/x' >&2; psql=postgres://app:hunter2@db/x; exit 2";
        let err = stream_err(cmd).await.to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("postgres://app:***@db/x"), "{err}");
        assert!(!source(cmd).describe().contains("hunter2"));
    }
}
