//! `kubectl weir`: watch and act on releases from the command line. kubectl finds the
//! `kubectl-weir` binary on PATH; this module is all of it, the binary only calls [`run`].
//!
//! Reads go through [`client`], pure summaries ([`summary`]) feed both the text
//! ([`render`]) and `-o json|yaml`, and actions set the `weir.dev/action` annotation
//! ([`actions`]). `dashboard` serves the same reads and actions as a live web page.

pub mod actions;
pub mod args;
pub mod client;
mod dashboard;
pub mod eject;
pub mod error;
#[cfg(test)]
mod fixtures;
mod list;
pub mod migrate;
pub mod render;
mod status;
pub mod summary;

use std::io::Write;
use std::process::ExitCode;

use args::{Cli, Request};
use client::Target;
use error::Error;

/// Runs one command; errors go to stderr and exit with 1 (clap exits with 2 on usage).
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`| head`) is no failure of the command.
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> Result<(), Error> {
    let target = Target::connect(&cli.target).await?;
    match cli.command.request() {
        Request::Status(args) => status::show(&target, args).await,
        Request::List(args) => list::show(&target, args).await,
        Request::Migrate(args) => migrate::run(&target, args).await,
        Request::Eject(args) => eject::run(&target, args).await,
        Request::Dashboard(args) => {
            dashboard::serve(&target, args, cli.target.namespace.is_some()).await
        }
        Request::Act(action, args) => {
            let outcome = actions::request(&target, action, args).await?;
            print(&format!("{outcome}\n"))
        }
    }
}

/// Writes `text` to stdout and flushes, so a watch shows each render at once.
fn print(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
