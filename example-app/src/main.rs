use std::process::ExitCode;

use clap::Parser;
use example_app::Opts;

/// glibc malloc spent about a quarter of the request path's CPU (requests
/// allocate on the runtime threads, the store writer frees on its own).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let opts = Opts::parse();
    handover_cli::main("example-app", "info", async {
        example_app::run(opts, handover_cli::shutdown::signal())
            .await
            .map(|()| handover_contract::exit::OK)
    })
}
