//! `kv-service`: a key-value store over HTTP whose instances share one
//! append-only log file (the store, like a replicated log). Each instance
//! appends under an exclusive lock and follows the file every
//! `--follow-every` to apply the other instances' records, so a write on
//! one is visible on the other after a real replication lag.
//!
//! What handover reads from it during a migration (the worked example in
//! docs/any-service.md): convergence from `/metrics` — `kv_applied_records`
//! on B against the sum of `kv_log_head` over its `shard` label sets —, the
//! drain from `kv_requests_total` on A, the stored ids from the paged
//! `GET /kv` listing, the answering instance from the `instance` field of a
//! write's reply (there is no instance header), health from `/healthz`.
//!
//! - [`log`]: the shared file, its lock and its format.
//! - [`replica`]: the map built from the log, the follower's step, the
//!   group-committing writer.
//! - [`api`]: the HTTP routes and the Prometheus text.

pub mod api;
pub mod log;
pub mod replica;

use handover_cli::shutdown::Shutdown;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::fault::LoseEvery;
use crate::serving::{self, RunError};
use api::Service;
use replica::{Replica, Writer};

/// A key-value store whose instances share one append-only log file.
#[derive(Debug, Clone, Parser)]
#[command(name = "kv-service", version)]
pub struct Opts {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the listening line on stdout names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The shared log file, created if absent; every instance of one store names the same file.
    #[arg(long, value_name = "PATH")]
    pub log: PathBuf,

    /// This instance's name, returned as `instance` in the reply to every write.
    #[arg(long, value_name = "NAME")]
    pub instance: String,

    /// How often the log is read for other instances' records: the replication lag.
    #[arg(long, default_value = "50ms", value_name = "DURATION", value_parser = serving::parse_interval)]
    pub follow_every: Duration,

    /// TEST-ONLY FAULT: answer every Nth well-formed write with 201 and never store it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub lose_every: Option<u64>,
}

/// Runs one instance until `shutdown` resolves.
pub async fn run(opts: Opts, shutdown: Shutdown) -> Result<(), RunError> {
    if let Some(problem) = crate::name::problem("--instance", &opts.instance) {
        return Err(RunError::Usage(problem));
    }
    let replica =
        Arc::new(Replica::open(&opts.log).map_err(|e| RunError::Usage(format!("--log: {e}")))?);
    let listener = serving::bind(opts.listen).await?;
    let writer = Writer::start(replica.clone(), opts.instance.clone());
    let svc = Arc::new(Service::new(
        replica,
        writer,
        opts.instance.clone(),
        LoseEvery::new(opts.lose_every),
    ));
    let follower = tokio::spawn(follow(svc.clone(), opts.follow_every));
    serving::announce(&listener, &opts.instance)?;
    let served = serving::serve(listener, api::router(svc), shutdown).await;
    follower.abort();
    served
}

/// Applies the log every `every`; the first pass that reaches the head
/// marks the instance caught up (healthy).
async fn follow(svc: Arc<Service>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let replica = svc.replica.clone();
        let result = match tokio::task::spawn_blocking(move || replica.follow()).await {
            Ok(followed) => followed.map_err(|e| e.to_string()),
            Err(e) => Err(format!("follower task: {e}")),
        };
        let mut error = svc.follow_error.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                *error = None;
                if !svc.caught_up.swap(true, Ordering::AcqRel) {
                    tracing::info!(applied = svc.replica.applied(), "caught up with the log");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot follow the log");
                *error = Some(e);
            }
        }
    }
}
