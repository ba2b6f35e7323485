//! Serving the API on a bound listener until a shutdown future resolves,
//! then draining in-flight requests within a grace period.

use std::sync::Arc;
use std::time::Duration;

use handover_cli::shutdown::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::api::{self, App};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("in-flight requests did not finish within {0:?} of shutdown")]
    GraceExceeded(Duration),
}

/// Serves until `shutdown` resolves; then stops accepting, marks the app as
/// draining, and waits up to `grace` for open requests to complete.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: Shutdown,
    grace: Duration,
) -> Result<(), ServeError> {
    let (begun_tx, begun_rx) = oneshot::channel::<()>();
    let drain_app = app.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining");
        drain_app.start_draining();
        let _ = begun_tx.send(());
    };
    let server = axum::serve(listener, api::router(app)).with_graceful_shutdown(signal);
    let deadline = async move {
        if begun_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => Ok(result?),
        _ = deadline => Err(ServeError::GraceExceeded(grace)),
    }
}
