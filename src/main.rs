#![forbid(unsafe_code)]

use clap::Parser;
use weir::cli::{Cli, Command};

/// jemalloc returns the pages a burst of reconciles freed (see Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Crd { kind } => {
            let yaml = match kind {
                Some(kind) => weir::crd_yaml(kind),
                None => weir::crds_yaml(),
            };
            // A closed pipe (`weir crd | head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), yaml.as_bytes());
            std::process::ExitCode::SUCCESS
        }
        Command::Run(args) => {
            weir::telemetry::init_logging(args.log_format);
            match weir::controller::run(*args).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "operator stopped");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
