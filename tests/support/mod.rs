//! Support for cluster tests: a client from `KUBECONFIG`, a fresh labelled namespace per
//! test, the cluster held shared or alone, and waits on conditions with deadlines.
//!
//! Cluster tests never skip: with no cluster configured they fail and say how to get one.
#![allow(dead_code)] // the benchmark that includes this module uses only part of it

pub mod audit;
pub mod auth_proxy;
pub mod browser;
pub mod chaos;
pub mod dataplane;
pub mod external_metrics;
pub mod gateway;
pub mod helm;
pub mod http;
pub mod microservice;
pub mod operator;
pub mod prometheus;
pub mod release;
pub mod traffic;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, wait, watcher};
use kube::{Api, Client, CustomResourceExt, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Label on every namespace a test creates, so leftovers are easy to find and remove.
pub const TEST_NAMESPACE_LABEL: &str = "test.weir.dev/owned";

/// A client for the cluster named by `KUBECONFIG`; panics with instructions when unset.
pub async fn client() -> Client {
    let Ok(path) = std::env::var("KUBECONFIG") else {
        panic!(
            "KUBECONFIG is not set: cluster tests need a running control plane. \
             Run `make test`, or `make cluster-up` and `export KUBECONFIG=$PWD/.cluster/kubeconfig`."
        );
    };
    let config = kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {path}: {e}"));
    let client = Client::try_from(config).expect("client from kubeconfig");
    client
        .apiserver_version()
        .await
        .unwrap_or_else(|e| panic!("the API server in {path} does not answer: {e}"));
    client
}

static CLUSTER: RwLock<()> = RwLock::const_new(());

/// Held by a test for as long as it needs the API server up and the cluster as every test
/// leaves it. All tests of the binary share it; the lock is fair, so once a test waits for
/// [`exclusive`], later ones wait behind it. Never take it twice in one test: a second
/// `shared` queued behind a waiting `exclusive` would never be granted.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    CLUSTER.read().await
}

/// Held by a test that stops the API server or etcd, changes the CRD, or runs an operator
/// over all namespaces: no other cluster test runs meanwhile.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    CLUSTER.write().await
}

/// Runs `test` in a fresh namespace that is deleted afterwards, even when the test panics,
/// holding the cluster [`shared`] throughout.
pub async fn with_temp_ns<F, Fut>(test: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _cluster = shared().await;
    in_temp_ns(test).await;
}

/// [`with_temp_ns`] for a test that already holds the cluster, shared (it used the cluster
/// before the namespace) or [`exclusive`].
pub async fn in_temp_ns<F, Fut>(test: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = client().await;
    let name = unique_name("weir-test");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.clone());
    namespace.metadata.labels =
        Some([(TEST_NAMESPACE_LABEL.to_string(), "true".to_string())].into());
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create test namespace");

    let outcome = tokio::spawn(test(client, name.clone())).await;
    let _ = namespaces.delete(&name, &DeleteParams::background()).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// A name no other test in this run uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:x}{:x}{n}",
        std::process::id() % 0xfff,
        nanos % 0xfffff
    )
}

/// Waits until the named object satisfies `condition`, or panics naming `what` at `deadline`.
pub async fn wait_for<K>(
    api: Api<K>,
    name: &str,
    deadline: Duration,
    what: &str,
    condition: impl wait::Condition<K>,
) -> Option<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let waited = tokio::time::timeout(deadline, wait::await_condition(api, name, condition)).await;
    match waited {
        Ok(Ok(object)) => object,
        Ok(Err(e)) => panic!("watching for {what} failed: {e}"),
        Err(_) => panic!("{what} did not happen within {deadline:?}"),
    }
}

/// Waits until the objects matching `label_selector` satisfy `condition`; returns them.
pub async fn wait_for_all<K>(
    api: Api<K>,
    label_selector: &str,
    deadline: Duration,
    what: &str,
    condition: impl Fn(&[Arc<K>]) -> bool,
) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().labels(label_selector);
    let stream = reflector(writer, watcher(api, config)).default_backoff();
    let watch = async {
        let mut stream = std::pin::pin!(stream);
        let mut listed = false;
        while let Some(event) = stream.try_next().await.transpose() {
            match event {
                Err(e) => eprintln!("watch error while waiting for {what}: {e}"),
                Ok(watcher::Event::InitDone) => listed = true,
                Ok(_) => {}
            }
            let objects = reader.state();
            if listed && condition(&objects) {
                return objects;
            }
        }
        panic!("watch for {what} ended")
    };
    match tokio::time::timeout(deadline, watch).await {
        Ok(objects) => objects,
        Err(_) => panic!(
            "{what} did not happen within {deadline:?}; last seen: {:#?}",
            reader
                .state()
                .iter()
                .map(|o| o.meta().name.clone())
                .collect::<Vec<_>>()
        ),
    }
}

/// Installs (server-side apply) Weir's CRD and the Gateway API HTTPRoute CRD that releases
/// route through, and waits until the API server serves them.
pub async fn install_crds(client: &Client) {
    install_crd(client, weir::api::Microservice::crd()).await;
    install_crd(client, weir::api::MetricTemplate::crd()).await;
    gateway::install_crd(client).await;
}

/// Installs one CRD (server-side apply) and waits until it is established.
pub async fn install_crd(client: &Client, crd: CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("a CRD has a name");
    let params = PatchParams::apply("weir-tests").force();
    crds.patch(&name, &params, &Patch::Apply(&crd))
        .await
        .unwrap_or_else(|e| panic!("apply the CRD {name}: {e}"));
    let what = format!("the CRD {name} to be established");
    let established = wait::conditions::is_crd_established();
    wait_for(crds, &name, Duration::from_secs(30), &what, established).await;
}

/// Polls `probe` until it yields a value, for state no watch can report (what kubectl
/// prints, the OpenAPI document). Panics naming `what` at `deadline`.
pub async fn eventually<T, Fut>(deadline: Duration, what: &str, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{what} did not happen within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs kubectl and returns whether it succeeded, its stdout and its stderr.
pub async fn try_kubectl(args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new("kubectl")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run kubectl (is .cluster/bin on PATH?): {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs kubectl (the cluster's own, from PATH) and returns its stdout; panics on failure.
pub async fn kubectl(args: &[&str]) -> String {
    let (ok, stdout, stderr) = try_kubectl(args).await;
    assert!(ok, "kubectl {args:?} failed: {stderr}");
    stdout
}
