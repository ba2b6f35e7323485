use std::process::ExitCode;

use clap::Parser;
use migrator::cli::{self, Opts};

fn main() -> ExitCode {
    let opts = Opts::parse();
    handover_cli::main("migrator", "warn", cli::run(opts))
}
