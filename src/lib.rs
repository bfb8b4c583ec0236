//! Weir: a Kubernetes operator that deploys microservices and releases them progressively.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod api;
pub mod build;
pub mod cli;
pub mod controller;
pub mod plugin;
pub mod release;
pub mod telemetry;

/// The CRDs Weir installs, as one YAML stream (what `weir crd` prints and `crds/` holds).
pub fn crds_yaml() -> String {
    use kube::CustomResourceExt;
    let crd = api::Microservice::crd();
    serde_yaml::to_string(&crd).expect("a CRD always serializes")
}
