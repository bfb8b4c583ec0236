//! Command-line interface of the `weir` binary. Configuration is parsed here, once, at start.

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

/// Weir deploys microservices and releases them progressively.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Run the operator against the cluster the usual kubeconfig resolution finds.
    Run(RunArgs),
}

/// Settings of a running operator.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, env = "WEIR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "WEIR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds to wait for the Microservice CRD to be established before giving up.
    #[arg(long, default_value_t = 60)]
    pub crd_wait_seconds: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}
