//! What both services do at their edge: tell the caller where they listen,
//! serve until SIGTERM and then let in-flight requests finish, answer errors
//! as JSON, and exit 0 / 1 / 2.

use std::future::IntoFuture;
use std::io::Write;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use handover_cli::shutdown::Shutdown;
use tokio::net::TcpListener;

/// How long in-flight requests may take after SIGTERM before the process
/// gives up on them (and exits 1).
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Why a service stopped, by who must act.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The operator: a bad flag or environment variable, a busy port (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The service itself or what it depends on failed while running (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl handover_cli::ExitStatus for RunError {
    fn exit_code(&self) -> i32 {
        match self {
            RunError::Usage(_) => 2,
            RunError::Failed(_) => 1,
        }
    }
}

/// Binds `addr`; a busy or invalid address is the operator's to fix.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, RunError> {
    handover_cli::listen::listen(addr)
        .map_err(|e| RunError::Usage(format!("cannot listen on {addr} (--listen): {e}")))
}

/// Prints the one stdout line a supervisor (or a test) waits for:
/// `{"event":"listening","addr":"IP:PORT","instance":NAME}`. With
/// `--listen 127.0.0.1:0` it is the only way to learn the port.
pub fn announce(listener: &TcpListener, instance: &str) -> Result<(), RunError> {
    let addr = listener
        .local_addr()
        .map_err(|e| RunError::Failed(format!("listener has no address: {e}")))?;
    let line =
        serde_json::json!({"event": "listening", "addr": addr.to_string(), "instance": instance});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| RunError::Failed(format!("cannot write to stdout: {e}")))?;
    tracing::info!(%addr, instance, "listening");
    Ok(())
}

/// Serves `router` until `shutdown` resolves, then stops accepting and waits
/// up to [`DRAIN_GRACE`] for the requests already in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let (began_tx, began_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing open requests");
        let _ = began_tx.send(());
    };
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(signal)
        .into_future();
    tokio::pin!(server);
    let failed = |e: std::io::Error| RunError::Failed(format!("server failed: {e}"));
    tokio::select! {
        done = &mut server => return done.map_err(failed),
        began = began_rx => if began.is_err() {
            // The signal future was dropped without firing: the server ended.
            return server.await.map_err(failed);
        },
    }
    match tokio::time::timeout(DRAIN_GRACE, server).await {
        Ok(done) => done.map_err(failed),
        Err(_) => Err(RunError::Failed(format!(
            "open requests did not finish within {DRAIN_GRACE:?} of the shutdown signal"
        ))),
    }
}

/// A JSON error reply: `{"error": "..."}`.
pub fn error_reply(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({"error": message.into()});
    (status, Json(body)).into_response()
}

/// Parses `50ms`, `2s`, `1m` for interval flags; zero is refused (an
/// interval of nothing would spin).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("not a duration like 50ms or 2s: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_zero_is_refused() {
        assert_eq!(parse_interval("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("").is_err());
    }
}
