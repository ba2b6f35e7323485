use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = feeder::cli::Opts::parse();
    handover_cli::main("feeder", "warn", feeder::cli::run(opts))
}
