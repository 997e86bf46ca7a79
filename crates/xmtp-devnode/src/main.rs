//! Standalone `xmtp-devnode` binary (the same node as `herald devnode`).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "xmtp-devnode",
    about = "Local XMTP v3 node (IdentityApi + MlsApi over gRPC/h2c)"
)]
struct Cli {
    #[command(flatten)]
    node: xmtp_devnode::DevNodeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber_init();
    match xmtp_devnode::run(Cli::parse().node).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xmtp-devnode: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr at INFO unless RUST_LOG says otherwise.
fn tracing_subscriber_init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
