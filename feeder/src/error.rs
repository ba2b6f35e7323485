//! The feeder's typed errors, split by who has to act: the user (bad options)
//! or the environment (I/O, the target).

use handover_contract::exit;
use std::path::PathBuf;

/// Everything that can stop the feeder from starting or finishing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad option: nothing was sent and nothing was written.
    #[error("invalid option: {0}")]
    Usage(String),
    /// A bad request template: nothing was sent; names the key.
    #[error("invalid request template: {0}")]
    Template(#[from] crate::template::TemplateError),
    /// The ack log or report file could not be created or written.
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The user list could not be fetched from the target.
    #[error("fetching users from {url}: {reason}")]
    Users { url: String, reason: String },
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
    /// A report to merge could not be read or decoded.
    #[error("report {path}: {reason}")]
    Report { path: PathBuf, reason: String },
    /// A background task of the feeder died.
    #[error("internal: {0}")]
    Internal(String),
}

/// Exit 2 when the user must fix the input, 1 when the run itself failed.
impl handover_cli::ExitStatus for Error {
    fn exit_code(&self) -> i32 {
        if self.is_usage() {
            exit::USAGE
        } else {
            exit::FAILED
        }
    }
}

impl Error {
    /// True when the error is the caller's input (exit code 2), not a failed run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Usage(_) | Error::Template(_) | Error::Report { .. }
        )
    }

    pub(crate) fn file(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::File {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
