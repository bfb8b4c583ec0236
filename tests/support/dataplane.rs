//! The local cluster's Gateway API data plane, as hack/cluster-up.sh starts it: the
//! standard-channel Gateway API CRDs, Gateway `weir-local` in `weir-system` served by Traefik
//! on `GATEWAY_PORT`, and the pod server answering HTTP on the pods' IPs (`DATA_PLANE=1` in
//! `ports.env`; 0 when the machine lacks NET_ADMIN).
//!
//! A traffic test starts with `let Some(plane) = data_plane("its name") else { return };`:
//! without a data plane the test is recorded as not run, and hack/cluster-test.sh names it in
//! its summary (under `CI=true` the run fails before any test starts). Outside cluster-test.sh
//! nothing would report the skip, so there a missing data plane fails the test.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::wait;
use kube::{Api, Client};

/// The Gateway cluster-up creates; routes in every namespace may attach to it.
pub const GATEWAY_NAME: &str = "weir-local";
pub const GATEWAY_NAMESPACE: &str = "weir-system";
/// The `controllerName` Traefik writes into route status.
pub const CONTROLLER_NAME: &str = "traefik.io/gateway-controller";
/// The annotation the upstream Gateway API CRDs carry (absent from the crate-generated one).
pub const BUNDLE_VERSION_ANNOTATION: &str = "gateway.networking.k8s.io/bundle-version";
/// Where the names of traffic tests that could not run are appended (set by cluster-test.sh).
pub const NOT_RUN_ENV: &str = "WEIR_TRAFFIC_NOT_RUN";

/// The addresses of a running data plane.
#[derive(Clone, Debug)]
pub struct DataPlane {
    pub gateway_port: u16,
    pub metrics_port: u16,
    /// The range the pod server answers on (kwok's `--cidr` for this cluster).
    pub pod_cidr: String,
    /// This test's turn on the data plane (see `data_plane`).
    _turn: Option<Arc<MutexGuard<'static, ()>>>,
}

/// One traffic test at a time: each sends a steady load through the one Gateway, and on a
/// 2-core machine several loads at once would measure the machine, not the release.
static TURN: Mutex<()> = Mutex::const_new(());

impl DataPlane {
    /// The Gateway's HTTP listener.
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// Traefik's Prometheus metrics.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }
}

/// The directory of the cluster under test: `WEIR_CLUSTER_DIR`, else the one holding
/// `KUBECONFIG` (cluster-up writes both into it).
pub fn cluster_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("WEIR_CLUSTER_DIR") {
        return PathBuf::from(dir);
    }
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG names the cluster under test");
    PathBuf::from(kubeconfig)
        .parent()
        .expect("KUBECONFIG has a directory")
        .to_path_buf()
}

/// `ports.env` of the cluster: `KEY=value` lines.
pub fn ports_env() -> BTreeMap<String, String> {
    let path = cluster_dir().join("ports.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} (written by hack/cluster-up.sh): {e}",
            path.display()
        )
    });
    parse_env(&text)
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The data plane, or why the cluster has none.
pub fn probe() -> Result<DataPlane, String> {
    let env = ports_env();
    if env.get("DATA_PLANE").map(String::as_str) != Some("1") {
        let why = std::fs::read_to_string(cluster_dir().join("no-data-plane"))
            .unwrap_or_else(|_| "ports.env has no DATA_PLANE=1".into());
        return Err(why.trim().to_string());
    }
    let port = |key: &str| -> u16 {
        env.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("ports.env has DATA_PLANE=1 but no {key}"))
    };
    Ok(DataPlane {
        gateway_port: port("GATEWAY_PORT"),
        metrics_port: port("GATEWAY_METRICS_PORT"),
        pod_cidr: env.get("POD_CIDR").cloned().unwrap_or_default(),
        _turn: None,
    })
}

/// The data plane for traffic test `test`, once it is this test's turn (the turn lasts as
/// long as the returned value). Without one: under `CI=true` the test fails;
/// with `WEIR_TRAFFIC_NOT_RUN` set (hack/cluster-test.sh) the test is recorded there and
/// `None` returned, so the run's summary names it; otherwise the test fails, saying why.
pub async fn data_plane(test: &str) -> Option<DataPlane> {
    let why = match probe() {
        Ok(plane) => {
            let turn = Arc::new(TURN.lock().await);
            return Some(DataPlane {
                _turn: Some(turn),
                ..plane
            });
        }
        Err(why) => why,
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs the data plane, which CI must have: {why}"
    );
    let Ok(list) = std::env::var(NOT_RUN_ENV) else {
        panic!(
            "{test} needs the data plane, and this cluster has none: {why}. Run it through \
             `make test` (which lists traffic tests it could not run) or on a cluster started with NET_ADMIN"
        );
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&list)
        .unwrap_or_else(|e| panic!("cannot record {test} in {list}: {e}"));
    writeln!(file, "{test}").unwrap_or_else(|e| panic!("cannot record {test} in {list}: {e}"));
    eprintln!("{test}: not run, no data plane: {why}");
    None
}

/// Whether the upstream Gateway API CRDs (cluster-up's) serve HTTPRoutes; waits until they
/// are established. The tests then use them rather than install the crate-generated CRD
/// over them (which would take the fields from cluster-up and change what Traefik reads).
pub async fn upstream_crds_installed(client: &Client) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = "httproutes.gateway.networking.k8s.io";
    let upstream = crds
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("read the CRD {name}: {e}"))
        .is_some_and(|crd| {
            crd.metadata
                .annotations
                .is_some_and(|a| a.contains_key(BUNDLE_VERSION_ANNOTATION))
        });
    if upstream {
        let what = format!("the CRD {name} to be established");
        let established = wait::conditions::is_crd_established();
        super::wait_for(crds, name, Duration::from_secs(30), &what, established).await;
    }
    upstream
}
