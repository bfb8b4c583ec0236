#![forbid(unsafe_code)]

use clap::Parser;
use weir::cli::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", weir::crds_yaml());
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
