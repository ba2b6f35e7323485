use std::process::ExitCode;

use clap::Parser;
use example_app::Opts;
use tracing_subscriber::EnvFilter;

/// glibc malloc spent about a quarter of the request path's CPU (requests
/// allocate on the runtime threads, the store writer frees on its own).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    let opts = Opts::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("example-app: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(example_app::run(opts, example_app::shutdown::signal())) {
        Ok(()) => handover_contract::exit::OK,
        Err(e) => {
            eprintln!("example-app: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
