use std::process::ExitCode;

use clap::Parser;
use example_app::Opts;

/// glibc malloc spent about a quarter of the request path's CPU (requests
/// allocate on the runtime threads, the store writer frees on its own).
/// mimalloc does as well as jemalloc did here and builds in seconds, not a
/// minute (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let opts = Opts::parse();
    handover_cli::main("example-app", "info", async {
        example_app::run(opts, handover_cli::shutdown::on_signal())
            .await
            .map(|()| handover_contract::exit::OK)
    })
}
