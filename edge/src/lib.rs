//! edge: a local stand-in for Cloudflare — the v4 DNS-records API and the proxy.
//!
//! One process, two listeners: the API (`/client/v4/…`, `/metrics`,
//! `/admin/…`) and the proxy (Host header → record → origin). Faithful
//! enough that the real `cloudflare` crate works against it unchanged.
//!
//! - [`config`]: `edge.toml`, the stable interface the migrator's demo writes.
//! - [`store`]: zones and records, persisted to the state file; tells an
//!   observer of every published state (wired to the routes in [`Edge::new`]).
//! - [`zone`]: a zone and its Cloudflare view.
//! - [`record`]: record shapes and validation of client input.
//! - [`envelope`]: Cloudflare's JSON envelope and error shapes.
//! - [`auth`]: bearer tokens with Cloudflare's error statuses and codes.
//! - [`api`]: the API routes.
//! - [`admin`]: the admin endpoints (`admin_token`): API faults and proxy
//!   faults per origin.
//! - [`faults`]: injected API faults — 429/5xx replies for testing clients'
//!   retries, calls held for a delay or until cleared (a hanging switch).
//! - [`origin_faults`]: proxy-side faults per origin IP, like Toxiproxy's
//!   toxics — added latency, connection reset, black-holed connect (522).
//! - [`routes`]: Host → origin, with the propagation window after a change.
//! - [`proxy`]: the forwarding listener; inside it `routing` (Host → record →
//!   origin), `sticky` (which origin a client connection uses — its moment in
//!   the propagation window, or the record as it is now after an idle spell
//!   longer than `idle_timeout` — and which origin connection it keeps),
//!   `forward` (sending, with the keep-alive race's retry and replay),
//!   `headers` (what crosses the hop), `error_page` (the edge's own
//!   replies: Cloudflare's 4xx/52x by where the failure came from) and
//!   `workers` (the proxy threads, one runtime and origin pool each).
//! - [`upstream`]: origin connections and the keep-alive pool.
//! - [`metrics`]: Prometheus counters.
//! - [`ray`]: `CF-Ray`-like request ids.
//! - [`opts`], [`secret`], [`error`]: the command line, redacted tokens,
//!   library errors and their exit codes.
//!
//! The process plumbing (logging, the runtime, the shutdown signal) is the
//! workspace's `handover-cli`; `main.rs` only parses [`Opts`] and calls [`run`].

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod envelope;
pub mod error;
pub mod faults;
pub mod metrics;
pub mod opts;
pub mod origin_faults;
pub mod proxy;
pub mod ray;
pub mod record;
pub mod routes;
pub mod secret;
pub mod store;
pub mod upstream;
pub mod zone;

pub use config::Config;
pub use error::Error;
pub use opts::Opts;

use handover_cli::shutdown::Shutdown;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Loads the config, binds both listeners, prints the listening line, and
/// serves until `shutdown` (in the binary: SIGTERM or Ctrl-C).
pub async fn run(opts: Opts, shutdown: Shutdown) -> Result<(), Error> {
    let mut config = Config::load(&opts.config)?;
    if let Some(a) = opts.api_listen {
        config.api_listen = a;
    }
    if let Some(p) = opts.proxy_listen {
        config.proxy_listen = p;
    }
    if let Some(s) = &opts.state_file {
        config.state_file = Some(s.clone());
    }
    let edge = Edge::new(&config)?;
    let api = bind("api", config.api_listen).await?;
    let proxy = bind("proxy", config.proxy_listen).await?;
    // Written by hand so the key order is the documented one.
    let line = format!(
        r#"{{"event":"listening","api":"{}","proxy":"{}"}}"#,
        api.local_addr()?,
        proxy.local_addr()?
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    tracing::info!(api = %api.local_addr()?, proxy = %proxy.local_addr()?, "edge listening");
    edge.serve(api, proxy, shutdown, opts.shutdown_timeout)
        .await
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    handover_cli::listen::listen(addr).map_err(|source| Error::Bind { what, addr, source })
}

/// A configured edge, ready to serve on listeners the caller bound.
pub struct Edge {
    api: api::ApiState,
    proxy: proxy::Proxy,
}

impl Edge {
    /// Opens the state (state file first, then the config's zones).
    pub fn new(config: &Config) -> Result<Self, Error> {
        let metrics = Arc::new(metrics::Metrics::default());
        let origin_faults = Arc::new(origin_faults::OriginFaults::new(Arc::clone(&metrics)));
        let routes = Arc::new(routes::Routes::new(config.propagation));
        let store = Arc::new(store::Store::open(config, Arc::clone(&metrics), {
            // Every published state starts the propagation window of the
            // hosts whose target it changed.
            let routes = Arc::clone(&routes);
            Box::new(move |zones| routes.update(zones, Instant::now()))
        })?);
        let api = api::ApiState {
            store,
            tokens: Arc::new(auth::Tokens::with_read_only(
                &config.tokens,
                &config.read_only_tokens,
            )),
            admin_token: config.admin_token.clone(),
            faults: Arc::new(faults::Faults::new(config.faults.clone())),
            origin_faults: Arc::clone(&origin_faults),
            metrics: Arc::clone(&metrics),
        };
        let proxy = proxy::Proxy {
            routes,
            pool: upstream::Pool::new(
                config.connect_timeout,
                Arc::clone(&metrics),
                Arc::clone(&origin_faults),
            ),
            h1_pool: upstream::Pool::new(
                config.connect_timeout,
                Arc::clone(&metrics),
                Arc::clone(&origin_faults),
            ),
            metrics,
            origin_faults,
            fault_changes: Arc::default(),
            origin_port: config.origin_port,
            idle_timeout: config.idle_timeout,
            origin_timeout: config.origin_timeout,
            threads: config.proxy_threads(),
            stopping: Arc::default(),
            stop: Arc::default(),
        };
        Ok(Edge { api, proxy })
    }

    /// Serves both listeners until `shutdown`, then drains in-flight requests
    /// for at most `drain` before returning.
    pub async fn serve(
        self,
        api: TcpListener,
        proxy: TcpListener,
        shutdown: Shutdown,
        drain: Duration,
    ) -> Result<(), Error> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let proxy_task = tokio::spawn(proxy::start(
            proxy,
            self.proxy,
            token.clone(),
            tracker.clone(),
        )?);
        let api_faults = Arc::clone(&self.api.faults);
        let app = api::router(self.api);
        let api_task = {
            let token = token.clone();
            tokio::spawn(async move {
                axum::serve(api, app)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await
            })
        };
        shutdown.await;
        // Held API calls (a `hang` fault) would otherwise hold up the drain.
        api_faults.close();
        token.cancel();
        tracker.close();
        let drained = tokio::time::timeout(drain, async {
            let _ = proxy_task.await;
            tracker.wait().await;
            api_task.await
        })
        .await;
        match drained {
            Ok(Ok(Ok(()))) => {
                tracing::info!("edge stopped");
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(Error::Io(e)),
            Ok(Err(join)) => Err(Error::Io(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!(
                    ?drain,
                    "in-flight requests did not finish in time; stopping anyway"
                );
                Ok(())
            }
        }
    }
}
