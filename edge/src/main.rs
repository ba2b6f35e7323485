use clap::Parser;
use handover_contract::exit;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
    let opts = edge::Opts::parse();
    let code = match edge::run(opts).await {
        Ok(()) => exit::OK,
        Err(e) => {
            let code = if e.is_usage() {
                exit::USAGE
            } else {
                exit::FAILED
            };
            eprintln!("edge: {:#}", anyhow::Error::from(e));
            code
        }
    };
    std::process::exit(code);
}
