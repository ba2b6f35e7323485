//! The command line: `feeder <base-url> <orders-per-sec> [flags]` and
//! `feeder merge A.json B.json …`.
//!
//! - [`request`]: the request-template flags (`--request FILE`, `--path`, …).

pub mod request;

use crate::merge;
use crate::printer;
use crate::{ClientKind, Error, Options, Progress, UserSource, Workload};
use clap::{Args, Parser, Subcommand, ValueEnum};
use handover_cli::Style;
use handover_contract::{duration, exit, FeederReport};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use request::{HeaderArg, RequestArgs};

/// How the template flags' texts are written (shown after the flags).
const PLACEHOLDERS: &str =
    "Placeholders in --path, --header values and --body: {id} (the order id, \
RUN-0000000042, recorded in the ack log exactly as sent), {run}, {seq}. Any other {name} is an \
error. A brace not followed by a name is literal, so JSON needs no escaping; {{ is a literal {, \
{{id}} the literal text {id}.";

/// Drive a service at an exact open-loop rate and record the fate of every request.
#[derive(Debug, Parser)]
#[command(
    name = "feeder",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = PLACEHOLDERS
)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Merge the reports of several feeders (counts summed, histograms merged).
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports written by `feeder --report`.
    #[arg(required = true, num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// Write the merged report here (JSON).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Base URL of the service, e.g. http://127.0.0.1:8080/
    #[arg(value_parser = parse_target, required = true)]
    pub target: Option<url::Url>,
    /// Requests per second (finite, > 0; fractions allowed).
    #[arg(value_parser = parse_rate, required = true)]
    pub rate: Option<f64>,
    /// Stop after this long (500ms, 20s, 5m); default: until Ctrl-C.
    #[arg(long, value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,
    /// Per-request timeout; a request without a reply by then is indeterminate.
    #[arg(long, default_value = "2s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// Cap on requests in flight; slots beyond it are counted as missed
    /// [default: rate × (timeout + 1 s)].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_in_flight: Option<u64>,
    /// Workers, each with one keep-alive connection [default: the in-flight
    /// cap, at most 256 and what the open-file limit allows]. Extra slots
    /// wait for a free worker; their latency still counts from the due time.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub connections: Option<u64>,
    /// HTTP client: auto (the feeder's own HTTP/1.1 client for http, reqwest
    /// for https), http1 (alias: hyper), reqwest.
    #[arg(long, value_enum, default_value_t = ClientArg::Auto, hide = true)]
    pub client: ClientArg,
    /// Write one JSON line per request sent (the ack log).
    #[arg(long, env = "FEEDER_ACK_LOG")]
    pub ack_log: Option<PathBuf>,
    /// Write the JSON report here at the end.
    #[arg(long, env = "FEEDER_REPORT")]
    pub report: Option<PathBuf>,
    /// Prefix of the order ids, unique per run [default: random].
    #[arg(long, env = "FEEDER_RUN_ID")]
    pub run_id: Option<String>,
    /// Send only shard I of N of the schedule (1-based, e.g. 2/3): N
    /// feeders with the same RATE, --run-id and --duration send the slots
    /// of one feeder at RATE between them, without overlapping ids.
    #[arg(long, value_name = "I/N", requires = "run_id")]
    pub shard: Option<crate::shard::Shard>,
    /// Reply header that names the answering instance [default: X-Instance].
    #[arg(long, value_name = "NAME")]
    pub instance_header: Option<String>,
    /// Take the user ids from GET {target}/users.
    #[arg(long, conflicts_with_all = ["user", "probe"])]
    pub users_from_app: bool,
    /// A user id to place orders for (repeatable) [default: u-0001 … u-0050].
    #[arg(long = "user", value_name = "ID", conflicts_with_all = ["probe", "template"])]
    pub user: Vec<String>,
    /// Connect HOST to ADDR:PORT, keeping the Host header (repeatable).
    #[arg(long, value_name = "HOST=ADDR:PORT", value_parser = parse_resolve)]
    pub resolve: Vec<(String, SocketAddr)>,
    /// Send GET PATH instead of placing orders (for services that are not the example app).
    #[arg(long, value_name = "PATH", conflicts_with = "template")]
    pub probe: Option<String>,
    /// Where the per-second lines and instance events go.
    #[arg(long, value_enum, default_value_t = ProgressArg::Stdout)]
    pub progress: ProgressArg,
    /// Exit 0 even when requests were rejected, indeterminate or missed
    /// (by default such a run exits 1: the load did not go through).
    #[arg(long)]
    pub allow_failures: bool,
    /// Accepted for older scripts: exiting 1 on failures is now the default.
    #[arg(long, hide = true)]
    pub fail_on_error: bool,
    #[command(flatten, next_help_heading = "Request template (any service)")]
    pub request: RequestArgs,
    #[command(flatten)]
    pub view: crate::view::ViewArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientArg {
    Auto,
    /// `hyper` is this client's earlier name, still accepted.
    #[value(alias = "hyper")]
    Http1,
    Reqwest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Stdout,
    Stderr,
    Off,
}

fn parse_target(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s)
        .map_err(|e| format!("not a URL ({e}); expected e.g. http://127.0.0.1:8080/"))?;
    crate::options::validate_target(&url).map_err(|e| e.to_string())?;
    Ok(url)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number (requests per second)"))?;
    if !r.is_finite() || r <= 0.0 {
        return Err(format!("rate must be a finite number > 0, got {s}"));
    }
    Ok(r)
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = duration::parse(s)?;
    if d.is_zero() {
        return Err(format!("duration {s:?} must be > 0"));
    }
    Ok(d)
}

fn parse_resolve(s: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected HOST=ADDR:PORT"))?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("{s:?}: {addr:?} is not ADDR:PORT ({e})"))?;
    if host.is_empty() {
        return Err(format!("{s:?}: empty host"));
    }
    Ok((host.to_string(), addr))
}

impl RunArgs {
    /// The library options these flags describe.
    pub fn options(&self) -> Result<Options, Error> {
        let (Some(target), Some(rate)) = (self.target.clone(), self.rate) else {
            return Err(Error::Usage("a target URL and a rate are required".into()));
        };
        let mut o = Options::new(target, rate);
        o.duration = self.duration;
        o.timeout = self.timeout;
        o.max_in_flight = self
            .max_in_flight
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        o.connections = self
            .connections
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        o.client = match self.client {
            ClientArg::Auto => ClientKind::Auto,
            ClientArg::Http1 => ClientKind::Http1,
            ClientArg::Reqwest => ClientKind::Reqwest,
        };
        o.ack_log.clone_from(&self.ack_log);
        if let Some(id) = &self.run_id {
            o.run_id.clone_from(id);
        }
        if let Some(shard) = self.shard {
            o.shard = shard;
        }
        if let Some(h) = &self.instance_header {
            o.instance_header.clone_from(h);
        }
        o.resolve.clone_from(&self.resolve);
        let template = self.request.template(self.instance_header.as_deref())?;
        o.workload = match (
            template,
            &self.probe,
            self.users_from_app,
            self.user.is_empty(),
        ) {
            (Some(t), _, _, _) => Workload::Template(t),
            (None, Some(path), _, _) => Workload::Probe { path: path.clone() },
            (None, None, true, _) => Workload::Orders {
                users: UserSource::FromApp,
            },
            (None, None, false, false) => Workload::Orders {
                users: UserSource::List(self.user.clone()),
            },
            (None, None, false, true) => Workload::Orders {
                users: UserSource::List(crate::options::seeded_users()),
            },
        };
        o.progress = match self.progress {
            ProgressArg::Stdout => Progress::Stdout,
            ProgressArg::Stderr => Progress::Stderr,
            ProgressArg::Off => Progress::Off,
        };
        o.validate()?;
        Ok(o)
    }
}

/// The exit code of a run ended by a second `q` in the live view (128 + SIGINT).
const FORCED: i32 = 130;

/// Runs the command; returns the exit code for a completed command.
pub async fn run(opts: Opts) -> Result<i32, Error> {
    match opts.command {
        Some(Command::Merge(m)) => run_merge(&m),
        None => run_feeder(&opts.run).await,
    }
}

async fn run_feeder(args: &RunArgs) -> Result<i32, Error> {
    let mut options = args.options()?;
    // Fail on an unwritable report path before sending anything.
    if let Some(path) = &args.report {
        std::fs::File::create(path)
            .map_err(|e| Error::Usage(format!("cannot create report {}: {e}", path.display())))?;
    }
    args.view.check().map_err(|e| Error::Usage(e.to_string()))?;
    // The live view takes stdout: the per-second lines would write over it.
    if args.view.on_screen() && options.progress == Progress::Stdout {
        options.progress = Progress::Off;
    }
    let (target, rate) = (options.target.to_string(), options.rate);
    let handle = crate::start(options).await?;
    let stopper = handle.stopper();
    let view = {
        let (stop, force) = (stopper.clone(), stopper.clone());
        let scene = crate::view::feeder::FeederScene::new(handle.watch(), target.clone(), rate);
        args.view
            .open(
                &format!("feeder {target}"),
                scene,
                Box::new(move || stop.stop()),
                // A second q: the in-flight requests are not waited for.
                Box::new(move || {
                    force.stop();
                    std::process::exit(FORCED)
                }),
            )
            .map_err(|e| Error::Usage(e.to_string()))
    };
    let view = match view {
        Ok(v) => v,
        Err(e) => {
            handle.stop();
            let _ = handle.finish().await;
            return Err(e);
        }
    };
    let signals = tokio::spawn(async move {
        handover_cli::shutdown::signal().await;
        tracing::info!("stopping: in-flight requests finish, then the summary");
        stopper.stop();
    });
    let finished = handle.finish_detailed().await;
    signals.abort();
    if let Some(v) = view {
        if let Err(e) = v.finish() {
            tracing::warn!(error = %e, "the live view ended with an error");
        }
    }
    let finished = finished?;
    let r = &finished.report;
    let mut out = std::io::stdout().lock();
    let style = Style::stdout();
    printer::summary(&mut out, &style, r, finished.steady_p99)
        .map_err(|e| Error::Internal(format!("writing the summary: {e}")))?;
    if let (Some(path), Some(lines)) = (&args.ack_log, finished.ack_lines) {
        let _ = writeln!(out, "  ack log: {lines} lines in {}", path.display());
    }
    if let Some(path) = &args.report {
        write_report(path, r)?;
    }
    let failed = r.rejected + r.indeterminate + r.missed;
    Ok(if failed > 0 && !args.allow_failures {
        exit::FAILED
    } else {
        exit::OK
    })
}

fn run_merge(m: &MergeArgs) -> Result<i32, Error> {
    let mut reports = Vec::with_capacity(m.reports.len());
    for path in &m.reports {
        reports.push((path.display().to_string(), merge::read(path)?));
    }
    let merged = merge::merge(&reports).map_err(Error::Usage)?;
    let mut out = std::io::stdout().lock();
    let style = Style::stdout();
    let _ = writeln!(out, "merged {} reports", reports.len());
    printer::summary(&mut out, &style, &merged, None)
        .map_err(|e| Error::Internal(format!("writing the summary: {e}")))?;
    if let Some(path) = &m.report {
        write_report(path, &merged)?;
    }
    Ok(exit::OK)
}

fn write_report(path: &Path, r: &FeederReport) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(r)
        .map_err(|e| Error::Internal(format!("serializing the report: {e}")))?;
    std::fs::write(path, json).map_err(|e| Error::file("writing report", path, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Opts::command().debug_assert();
    }

    #[test]
    fn classic_two_argument_form() {
        let o = Opts::try_parse_from(["feeder", "http://127.0.0.1:8080/", "1000"]).unwrap();
        let opts = o.run.options().unwrap();
        assert_eq!(opts.rate, 1000.0);
        assert!(opts.duration.is_none());
        assert!(
            matches!(opts.workload, Workload::Orders { users: UserSource::List(ref u) } if u.len() == 50)
        );
    }

    #[test]
    fn merge_subcommand() {
        let o = Opts::try_parse_from(["feeder", "merge", "a.json", "b.json", "--report", "m.json"])
            .unwrap();
        match o.command {
            Some(Command::Merge(m)) => assert_eq!(m.reports.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            vec!["feeder", "http://x/", "0"],
            vec!["feeder", "http://x/", "-5"],
            vec!["feeder", "http://x/", "NaN"],
            vec!["feeder", "http://x/", "fast"],
            vec!["feeder", "not a url", "10"],
            vec!["feeder", "ftp://x/", "10"],
            vec!["feeder", "http://x/", "10", "--resolve", "x"],
            vec!["feeder", "http://x/", "10", "--duration", "soon"],
            vec!["feeder", "http://x/", "10", "--max-in-flight", "0"],
        ] {
            let err = Opts::try_parse_from(&args).expect_err(&args.join(" "));
            assert_eq!(err.exit_code(), exit::USAGE, "{args:?}");
        }
    }

    #[test]
    fn client_flag_selects_the_own_http1_client_under_both_names() {
        for name in ["http1", "hyper"] {
            let o = Opts::try_parse_from(["feeder", "http://x/", "10", "--client", name]).unwrap();
            assert_eq!(o.run.options().unwrap().client, ClientKind::Http1, "{name}");
        }
    }

    #[test]
    fn resolve_flag_parses() {
        assert_eq!(
            parse_resolve("shop.test=127.0.0.1:8081").unwrap(),
            ("shop.test".to_string(), "127.0.0.1:8081".parse().unwrap())
        );
        assert!(parse_resolve("=127.0.0.1:1").is_err());
        assert!(parse_resolve("h=127.0.0.1").is_err());
    }
}
