//! Weir's cluster tests, one binary with a module per area, so the support code and Weir
//! itself are compiled once for all of them.
//!
//! Every test that uses the cluster holds it shared (`support::with_temp_ns` takes care of
//! that); the few that stop the API server or etcd, or change what every other test relies
//! on (the CRD, an operator watching all namespaces), hold it alone. Tests that need no
//! cluster (chart rendering, analysis against a local Prometheus) hold nothing.
//!
//! Run one area with a module filter: `cargo test --test cluster -- release_canary::`.
#![forbid(unsafe_code)]

#[path = "../support/mod.rs"]
mod support;

mod admission;
mod analysis;
mod analysis_credentials;
mod chaos;
mod cluster_harness;
mod core;
mod dashboard;
mod dataplane;
mod examples;
mod external_metrics;
mod failure_reasons;
mod gateway_api;
mod generated_specs;
mod gitops;
mod grpc_route;
mod helm;
mod image;
mod kube_state_metrics;
mod leader;
mod malformed;
mod metric_templates;
mod migrate;
mod notifications;
mod operator_process;
mod plugin;
mod pod;
mod prometheus_harness;
mod quiet;
mod release_analysis;
mod release_bluegreen;
mod release_canary;
mod release_gates;
mod release_groups;
mod release_holds;
mod release_safety;
mod takeover;
mod tenant;
mod track_config;
mod traffic;
mod traffic_failure;
