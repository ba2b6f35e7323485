use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let opts = edge::Opts::parse();
    handover_cli::main("edge", "info", async {
        edge::run(opts, handover_cli::shutdown::signal())
            .await
            .map(|()| handover_contract::exit::OK)
    })
}
