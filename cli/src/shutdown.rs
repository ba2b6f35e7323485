//! The one shutdown trigger of every handover program: SIGTERM (a service
//! manager, `kill`) or Ctrl-C, whichever comes first. Servers drain on it;
//! the migrator turns it into a safe stop of the current step.

use std::future::Future;
use std::pin::Pin;

/// What a server stops on, boxed so that its `run` is not generic. A generic
/// `run` is compiled into each binary that calls it, not into its library,
/// and everything it instantiates (axum, hyper) is compiled a second time
/// there: in the demo build the edge's binary took 11.8 s and the
/// example-app's 7.9 s; boxed, 1.2 s and 1.8 s.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// [`signal`], boxed as a server's [`Shutdown`].
pub fn on_signal() -> Shutdown {
    Box::pin(signal())
}

/// Resolves on the first SIGTERM or SIGINT. If one handler cannot be
/// installed, that signal is not awaited and the other still works.
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            tracing::warn!("cannot listen for Ctrl-C; SIGTERM only");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sigterm_resolves_the_signal() {
        let waiter = tokio::spawn(signal());
        // Let the handler install before the signal arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pid = std::process::id();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("signal() resolved")
            .expect("task ran");
    }
}
