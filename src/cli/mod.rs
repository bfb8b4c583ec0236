//! Command-line interface of the `weir` binary. Configuration is parsed here, once, at start.

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

use crate::analysis::{CaBundle, Credentials};
use crate::notify::Sinks;

/// Weir deploys microservices and releases them progressively.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML: all of them as one stream, or one.
    Crd {
        /// The CRD to print, by its plural.
        kind: Option<CrdKind>,
    },
    /// Run the operator against the cluster the usual kubeconfig resolution finds.
    Run(Box<RunArgs>),
}

/// Weir's CRDs, by plural: `crds/<plural>.weir.dev.yaml`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdKind {
    Microservices,
    Metrictemplates,
}

/// Settings of a running operator.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Prometheus server that analysis queries go to when a metric names no address,
    /// for example `http://prometheus.monitoring:9090`.
    #[arg(long, env = "WEIR_PROMETHEUS_ADDRESS")]
    pub prometheus_address: Option<String>,

    /// Address of the HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, env = "WEIR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "WEIR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds to wait for the Microservice CRD to be established before giving up.
    #[arg(long, default_value_t = 60)]
    pub crd_wait_seconds: u64,

    /// Watch only these namespaces, comma-separated (default: all namespaces). With a list,
    /// Weir needs rights in those namespaces only.
    #[arg(long, env = "WEIR_NAMESPACE", value_delimiter = ',')]
    pub namespace: Vec<String>,

    /// Hosts analysis webhooks and Prometheus queries may reach, comma-separated; `*.suffix`
    /// matches any subdomain. Default: the `--prometheus-address` host and in-cluster
    /// Services (`*.svc`, `*.svc.cluster.local`).
    #[arg(long, env = "WEIR_ANALYSIS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub analysis_allowed_hosts: Vec<String>,

    /// PEM file of CA certificates that analysis endpoints (Prometheus, webhooks) may be
    /// signed by, trusted besides the platform's root certificates: a cluster CA. Read once
    /// at start; a file that cannot be read or holds no usable certificate stops the start.
    #[arg(long, env = "WEIR_ANALYSIS_CA_BUNDLE", value_name = "PEM file", value_parser = CaBundle::from_arg)]
    pub analysis_ca_bundle: Option<CaBundle>,

    /// YAML file of credential sets for metric sources (mounted from a Secret in the
    /// operator's namespace): `credentials: [{name, namespaces, bearerToken | basicAuth |
    /// oauth2, headers}]`. A metric names a set with `prometheus.credentials`. Read once at
    /// start; a file that cannot be used stops the start.
    #[arg(long, env = "WEIR_ANALYSIS_CREDENTIALS", value_name = "YAML file", value_parser = Credentials::from_arg)]
    pub analysis_credentials: Option<Credentials>,

    /// YAML file of notification sinks (mounted from a Secret in the operator's namespace):
    /// `sinks: [{name, format: cloudevents | slack | teams, url, namespaces, headers}]`. A
    /// Microservice subscribes with `rollout.notify`. Read once at start.
    #[arg(long, env = "WEIR_NOTIFICATION_SINKS", value_name = "YAML file", value_parser = Sinks::from_arg)]
    pub notification_sinks: Option<Sinks>,

    /// Seconds between forced re-checks of a settled Microservice (drift is also caught at
    /// once through watches).
    #[arg(long, env = "WEIR_RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,

    /// Milliseconds after a reconcile during which further triggers of the same
    /// Microservice are gathered into one, run when they end: the burst of Deployment updates
    /// of a rollout then costs one status write, not one each. The first trigger of a quiet
    /// Microservice runs at once.
    #[arg(long, env = "WEIR_DEBOUNCE_MS", default_value_t = 200)]
    pub debounce_ms: u64,

    /// Microservices reconciled at once. Bounded so that a restart with thousands of
    /// Microservices, all queued together, keeps a bounded number of reconciles in memory;
    /// reconciles wait on the API server, so a few dozen keep it as busy as thousands would.
    #[arg(long, env = "WEIR_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Let Microservices track the ConfigMaps they reference (`rollout.trackConfig`): needs
    /// get, list, watch, create and delete on ConfigMaps.
    #[arg(long, env = "WEIR_TRACK_CONFIGMAPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub track_configmaps: bool,

    /// Let Microservices track the Secrets they reference: needs get, list, watch, create and
    /// delete on Secrets, which is why it is off unless asked for.
    #[arg(long, env = "WEIR_TRACK_SECRETS", default_value_t = false, action = clap::ArgAction::Set)]
    pub track_secrets: bool,

    /// When a release aborts, list the new version's pods once and say in the abort's
    /// message, event and status what they show (ImagePullBackOff, OOMKilled,
    /// Unschedulable, ...): needs `list` on Pods.
    #[arg(long, env = "WEIR_POD_FAILURE_REASONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub pod_failure_reasons: bool,

    /// Freeze every release in the cluster, with this reason in their status: none starts,
    /// none adds exposure; aborts and steps that reduce exposure go on.
    #[arg(long, env = "WEIR_FREEZE")]
    pub freeze: Option<String>,

    /// Honour the `weir.dev/freeze` annotation on namespaces: needs `get` on Namespaces.
    #[arg(long, env = "WEIR_NAMESPACE_FREEZE", default_value_t = true, action = clap::ArgAction::Set)]
    pub namespace_freeze: bool,

    /// Take part in leader election, so only one of several replicas writes.
    #[arg(long, env = "WEIR_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease.
    #[arg(long, env = "WEIR_LEASE_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// Name of the leader-election Lease.
    #[arg(long, env = "WEIR_LEASE_NAME", default_value = "weir-operator")]
    pub lease_name: String,

    /// Seconds a leader's lease lasts without renewal; a follower takes over after it.
    #[arg(long, env = "WEIR_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,

    /// Name of this replica in the Lease, events and user agent (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// CPU request of a container whose spec sets none.
    #[arg(long, env = "WEIR_DEFAULT_CPU_REQUEST", default_value = "100m")]
    pub default_cpu_request: String,

    /// Memory request of a container whose spec sets none.
    #[arg(long, env = "WEIR_DEFAULT_MEMORY_REQUEST", default_value = "128Mi")]
    pub default_memory_request: String,

    /// CPU limit of a container whose spec sets none (default: no CPU limit).
    #[arg(long, env = "WEIR_DEFAULT_CPU_LIMIT")]
    pub default_cpu_limit: Option<String>,

    /// Memory limit of a container whose spec sets none.
    #[arg(long, env = "WEIR_DEFAULT_MEMORY_LIMIT", default_value = "256Mi")]
    pub default_memory_limit: String,
}

impl RunArgs {
    /// The hosts analysis may reach: the setting, or by default in-cluster Services (the
    /// configured Prometheus is always allowed).
    pub fn allowed_analysis_hosts(&self) -> Vec<String> {
        if self.analysis_allowed_hosts.is_empty() {
            vec!["*.svc".into(), "*.svc.cluster.local".into()]
        } else {
            self.analysis_allowed_hosts.clone()
        }
    }

    /// The resource defaults these settings describe.
    pub fn defaults(&self) -> crate::build::Defaults {
        crate::build::Defaults {
            cpu_request: self.default_cpu_request.clone(),
            memory_request: self.default_memory_request.clone(),
            cpu_limit: self.default_cpu_limit.clone(),
            memory_limit: self.default_memory_limit.clone(),
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_that_cannot_be_read_stops_the_start_naming_the_file() {
        let parsed =
            Cli::try_parse_from(["weir", "run", "--analysis-ca-bundle", "/nonexistent/ca.pem"]);
        let error = parsed.unwrap_err().to_string();
        assert!(
            error.contains("--analysis-ca-bundle <PEM file>")
                && error.contains("cannot read the analysis CA bundle /nonexistent/ca.pem"),
            "{error}"
        );
    }

    #[test]
    fn a_ca_bundle_is_loaded_at_start() {
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/src/analysis/testdata/ca.pem");
        let parsed = Cli::try_parse_from(["weir", "run", "--analysis-ca-bundle", ca]).unwrap();
        let Command::Run(args) = parsed.command else {
            panic!("not a run")
        };
        let bundle = args.analysis_ca_bundle.expect("the bundle");
        assert_eq!(bundle.certificates().len(), 1);
    }
}
