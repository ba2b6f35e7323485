//! The edge's library errors and the exit code each deserves.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (file, flags or environment) is unusable: exit 2.
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// The state file exists but cannot be read or parsed: exit 2, nothing changed.
    #[error("state file {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the run never started because of what the user gave us.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Config { .. } | Error::State { .. } | Error::Bind { .. }
        )
    }
}

impl handover_cli::ExitStatus for Error {
    /// 2 when the user must fix the input (config, state file, address), else 1.
    fn exit_code(&self) -> i32 {
        if self.is_usage() {
            handover_contract::exit::USAGE
        } else {
            handover_contract::exit::FAILED
        }
    }
}
