//! Weir: a Kubernetes operator that deploys microservices and releases them progressively.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod api;
pub mod build;
pub mod cli;
pub mod controller;
pub mod notify;
pub mod plugin;
pub mod release;
pub mod takeover;
pub mod telemetry;

/// The CRDs Weir installs, as one YAML stream (what `weir crd` prints): the files of
/// `crds/` in the order of [`cli::CrdKind`], each after a `---`.
pub fn crds_yaml() -> String {
    use clap::ValueEnum;
    cli::CrdKind::value_variants()
        .iter()
        .map(|kind| format!("---\n{}", crd_yaml(*kind)))
        .collect()
}

/// One CRD as YAML: the file `crds/<plural>.weir.dev.yaml`.
pub fn crd_yaml(kind: cli::CrdKind) -> String {
    use kube::CustomResourceExt;
    let crd = match kind {
        cli::CrdKind::Microservices => api::Microservice::crd(),
        cli::CrdKind::Metrictemplates => api::MetricTemplate::crd(),
    };
    serde_yaml::to_string(&crd).expect("a CRD always serializes")
}
