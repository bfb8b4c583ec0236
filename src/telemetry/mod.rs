//! Logs, metrics and the health endpoints.

mod metrics;
mod server;

pub use metrics::{Metrics, ReconcileOutcome};
pub use server::{Health, Refresh, bind, serve};

use crate::cli::LogFormat;

/// Installs the global tracing subscriber; `RUST_LOG` narrows or widens it (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
