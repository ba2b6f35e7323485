//! The command line: `edge --config edge.toml`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A local stand-in for Cloudflare: the v4 DNS-records API and the proxy.
///
/// After binding, prints one JSON line on stdout:
/// {"event":"listening","api":"ADDR","proxy":"ADDR"}. Logs go to stderr
/// (RUST_LOG). SIGTERM or Ctrl-C: stop accepting, finish in-flight requests, exit 0.
#[derive(Debug, Clone, Parser)]
#[command(name = "edge", version)]
pub struct Opts {
    /// The edge.toml to serve (see edge/edge.example.toml).
    #[arg(long, env = "EDGE_CONFIG")]
    pub config: PathBuf,
    /// Overrides `api_listen` from the config.
    #[arg(long, env = "EDGE_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// Overrides `proxy_listen` from the config.
    #[arg(long, env = "EDGE_PROXY_LISTEN")]
    pub proxy_listen: Option<SocketAddr>,
    /// Overrides `state_file` from the config.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, default_value = "10s", value_parser = handover_contract::duration::parse)]
    pub shutdown_timeout: Duration,
}
