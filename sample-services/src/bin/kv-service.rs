use std::process::ExitCode;

use clap::Parser;
use sample_services::kv;

fn main() -> ExitCode {
    let opts = kv::Opts::parse();
    handover_cli::main("kv-service", "info", async {
        kv::run(opts, handover_cli::shutdown::on_signal())
            .await
            .map(|()| 0)
    })
}
