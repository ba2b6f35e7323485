use clap::Parser;
use handover_contract::exit;
use migrator::cli::{self, Opts};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = Opts::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(exit::FAILED);
        }
    };
    let code = match runtime.block_on(cli::run(opts)) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::new(e);
            eprintln!("error: {e:#}");
            e.downcast_ref::<cli::CliError>()
                .map_or(exit::FAILED, cli::CliError::exit_code)
        }
    };
    // Background tasks (the feeder, log copiers) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}
