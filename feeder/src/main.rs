use clap::Parser;
use handover_contract::exit;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = feeder::cli::Opts::parse();
    let code = match tokio::runtime::Runtime::new() {
        Ok(rt) => match rt.block_on(feeder::cli::run(opts)) {
            Ok(code) => code,
            Err(e) => {
                let usage = e.is_usage();
                eprintln!("feeder: {:#}", anyhow::Error::from(e));
                if usage {
                    exit::USAGE
                } else {
                    exit::FAILED
                }
            }
        },
        Err(e) => {
            eprintln!("feeder: starting the runtime: {e}");
            exit::FAILED
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
