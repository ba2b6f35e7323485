//! Start-up and the life of one instance: open the store, catch up, seed,
//! bind, announce, serve until shutdown.

use handover_cli::shutdown::Shutdown;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::{ApiConfig, App};
use crate::faults::Faults;
use crate::follower::{self, ApplyGate};
use crate::import::{self, ImportError};
use crate::opts::Opts;
use crate::projection::Projection;
use crate::server::{self, ServeError};
use crate::store::{self, StoreError, StoreOptions, StoreUrl};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad flags, an unusable store URL, a bad import file, a busy port.
    #[error("{0}")]
    Config(String),
    /// The instance started but could not keep running properly.
    #[error("{0}")]
    Failed(String),
}

impl handover_cli::ExitStatus for RunError {
    fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => handover_contract::exit::USAGE,
            RunError::Failed(_) => handover_contract::exit::FAILED,
        }
    }
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Config(_) => RunError::Config(e.to_string()),
            // At start-up an unreachable store is a configuration problem: fail
            // fast with one clear error instead of retrying without end.
            StoreError::Unavailable(_) => RunError::Config(e.to_string()),
            StoreError::Corrupt(_) => RunError::Failed(e.to_string()),
        }
    }
}

/// Runs one instance until `shutdown` resolves.
pub async fn run(opts: Opts, shutdown: Shutdown) -> Result<(), RunError> {
    let instance = opts.instance();
    // A URL that does not parse names the flag (or HANDOVER_STORE) it came from.
    let url = StoreUrl::parse(&opts.store)
        .map_err(|e| RunError::Config(format!("--store (HANDOVER_STORE): {e}")))?;
    let import_text = match &opts.import {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            RunError::Config(format!("cannot read import file {}: {e}", path.display()))
        })?),
        None => None,
    };
    let store_opts = StoreOptions {
        max_batch: usize::try_from(opts.max_batch).unwrap_or(1024),
        append_timeout: opts.append_timeout,
        connect_timeout: opts.connect_timeout,
        poll_interval: opts.poll_interval,
        ..StoreOptions::default()
    };
    let store = tokio::time::timeout(
        opts.connect_timeout + Duration::from_secs(1),
        store::open(&url, store_opts),
    )
    .await
    .map_err(|_| {
        RunError::Config(format!(
            "store {url} not reachable within {:?}",
            opts.connect_timeout
        ))
    })??;
    tracing::info!(store = %store.describe(), instance = %instance, "store open");

    let projection = Arc::new(Projection::new());
    let cancel = CancellationToken::new();
    let _stop_follower = cancel.clone().drop_guard();
    let gate = Arc::new(ApplyGate::default());
    tokio::spawn(follower::follow_gated(
        store.clone(),
        projection.clone(),
        cancel.clone(),
        gate.clone(),
    ));

    let catch_up_limit = Duration::from_secs(600);
    follower::catch_up(&*store, &projection, catch_up_limit).await?;
    let import_err = |e: ImportError| match e {
        ImportError::Store(s) => RunError::from(s),
        other => RunError::Config(other.to_string()),
    };
    if !opts.no_seed {
        let s = import::import(&*store, &projection, import::SEED)
            .await
            .map_err(import_err)?;
        tracing::info!(
            added = s.added,
            existing = s.existing,
            "bundled seed imported"
        );
    }
    if let (Some(text), Some(path)) = (&import_text, &opts.import) {
        let s = import::import(&*store, &projection, text)
            .await
            .map_err(|e| match e {
                ImportError::Line { .. } => RunError::Config(format!("{}: {e}", path.display())),
                other => import_err(other),
            })?;
        tracing::info!(file = %path.display(), added = s.added, existing = s.existing, "imported");
    }
    let head = follower::catch_up(&*store, &projection, catch_up_limit).await?;

    let listener = handover_cli::listen::listen(opts.listen)
        .map_err(|e| RunError::Config(format!("cannot listen on {}: {e}", opts.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| RunError::Failed(format!("listener has no address: {e}")))?;
    let config = ApiConfig {
        max_lag: opts.max_lag,
        test_hooks: opts.test_hooks,
        ..ApiConfig::default()
    };
    let mut app =
        App::new(instance.clone(), store.clone(), projection, config).map_err(RunError::Config)?;
    if opts.fault_injection {
        tracing::warn!("fault injection on: /admin/faults can fail /health and pause applying (rehearsals and tests only)");
        app = app.with_faults(Arc::new(Faults::new(gate)));
    }
    let app = Arc::new(app);
    announce(&addr.to_string(), &instance).map_err(|e| RunError::Failed(format!("stdout: {e}")))?;
    tracing::info!(%addr, %instance, head, "listening");

    server::serve(listener, app, shutdown, opts.shutdown_timeout)
        .await
        .map_err(|e| match e {
            ServeError::Io(_) | ServeError::GraceExceeded(_) => RunError::Failed(e.to_string()),
        })?;
    tracing::info!("stopped");
    Ok(())
}

/// The one stdout line callers wait for: `{"event":"listening",…}`.
fn announce(addr: &str, instance: &str) -> std::io::Result<()> {
    let line = serde_json::json!({"event": "listening", "addr": addr, "instance": instance});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
