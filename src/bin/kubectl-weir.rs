//! The `kubectl weir` plugin: kubectl finds `kubectl-weir` on PATH.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    weir::plugin::run(weir::plugin::args::Cli::parse()).await
}
