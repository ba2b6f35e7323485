use std::process::ExitCode;

use clap::Parser;
use sample_services::orders;

fn main() -> ExitCode {
    let opts = orders::Opts::parse();
    handover_cli::main("pg-orders", "info", async {
        orders::run(opts, handover_cli::shutdown::on_signal())
            .await
            .map(|()| 0)
    })
}
