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
    // One runtime thread: the feeder's work is syscalls and wake-ups, and a
    // second thread mostly added cross-thread wake-ups (scripts/bench-feeder.sh:
    // clean at 100,000/s instead of 80,000/s on 2 cores, less CPU per request).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let code = match runtime {
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
