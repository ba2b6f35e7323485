//! The process plumbing every handover binary shares, so the four `main.rs`
//! files stay a few lines each and behave alike at the edge:
//!
//! - [`main`]: logging on stderr (`RUST_LOG`), the runtime, the error printed
//!   with its cause chain (`{:#}`), the exit code.
//! - [`fd_table`]: the descriptor table grown once at start (no RCU waits
//!   when connections come and go).
//! - [`listen`]: the servers' listening socket, with a deep accept queue.
//! - [`memory`]: no transparent huge pages (latency spikes on page faults).
//! - [`shutdown`]: the one shutdown trigger (SIGTERM or Ctrl-C).
//! - [`style`]: colour for people, named for meaning, plain under `NO_COLOR`
//!   or a pipe; durations as people read them.
//!
//! Exit codes themselves are part of the wire contract
//! (`handover_contract::exit`): scripts rely on them.

pub mod fd_table;
pub mod listen;
pub mod memory;
pub mod shutdown;
pub mod style;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

pub use style::{secs, Style};

/// An error that knows which exit code it deserves (2: the user must fix the
/// input; 1: the run itself failed).
pub trait ExitStatus {
    fn exit_code(&self) -> i32;
}

/// How long background tasks (log copiers, a feeder winding down) may hold
/// the process after the command's own work is done.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Sets up logging, runs `work` on a multi-thread runtime and maps its result
/// to the process exit code. `name` prefixes the error line; `default_log` is
/// the filter when `RUST_LOG` is unset.
pub fn main<F, E>(name: &str, default_log: &str, work: F) -> ExitCode
where
    F: Future<Output = Result<i32, E>>,
    E: std::error::Error + ExitStatus + Send + Sync + 'static,
{
    init_logging(default_log);
    memory::no_transparent_huge_pages();
    fd_table::grow();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return exit_code(handover_exit::FAILED);
        }
    };
    let code = match runtime.block_on(work) {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("{name}: {:#}", anyhow::Error::new(e));
            code
        }
    };
    // Background tasks must not keep the process alive.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    exit_code(code)
}

/// Logs go to stderr, filtered by `RUST_LOG` (else `default_log`), coloured
/// only on a terminal without `NO_COLOR`.
pub fn init_logging(default_log: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    let ansi = style::color_allowed(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The codes this crate itself needs; the full set is `handover_contract::exit`.
mod handover_exit {
    pub const FAILED: i32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot read plan")
        }
    }
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no such file")
        }
    }
    impl std::error::Error for Inner {}
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl ExitStatus for Outer {
        fn exit_code(&self) -> i32 {
            2
        }
    }

    #[test]
    fn errors_print_their_cause_chain() {
        let e = anyhow::Error::new(Outer(Inner));
        assert_eq!(format!("{e:#}"), "cannot read plan: no such file");
    }

    #[test]
    fn the_error_decides_the_exit_code() {
        let code = main("t", "off", async { Err::<i32, _>(Outer(Inner)) });
        assert_eq!(code, ExitCode::from(2));
        let code = main("t", "off", async { Ok::<i32, Outer>(0) });
        assert_eq!(code, ExitCode::from(0));
    }
}
