use std::process::ExitCode;

use clap::Parser;

/// The proxy path allocates and frees several small buffers per request;
/// glibc malloc was ~8 % of the edge's CPU under wrk (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let opts = edge::Opts::parse();
    handover_cli::main("edge", "info", async {
        edge::run(opts, handover_cli::shutdown::on_signal())
            .await
            .map(|()| handover_contract::exit::OK)
    })
}
