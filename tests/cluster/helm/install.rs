//! Installing the chart: its RBAC proven with the operator binary run as its
//! ServiceAccount, then upgrade and uninstall.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::canary::release_a_canary;
use super::{CRD, assert_logs_json};
use crate::support;
use crate::support::helm::{
    CHART, ClusterScopedCleanup, ExtraNamespace, OperatorAs, chart_operator, client_from, granted,
    helm, kubectl_as, rules, service_account_kubeconfig, try_helm, values_file,
};
use crate::support::microservice::pod_is_ready;
use crate::support::release::DEADLINE;
use crate::support::{kubectl, wait_for_all};

/// The rules Weir needs where it watches, as `granted` lists them.
pub fn watch_rules() -> BTreeSet<String> {
    let children = ["get", "list", "watch", "create", "patch", "delete"];
    [
        rules("weir.dev", "microservices", &["list", "watch", "patch"]),
        rules("weir.dev", "microservices/status", &["patch"]),
        rules("apps", "deployments", &children),
        rules("", "services", &children),
        rules("policy", "poddisruptionbudgets", &children),
        rules("autoscaling", "horizontalpodautoscalers", &children),
        rules("gateway.networking.k8s.io", "httproutes", &children),
        rules("gateway.networking.k8s.io", "grpcroutes", &children),
        rules("discovery.k8s.io", "endpointslices", &["list", "watch"]),
        rules("events.k8s.io", "events", &["create", "patch"]),
        // rollout.trackConfig, on by default for ConfigMaps (never Secrets by default).
        rules(
            "",
            "configmaps",
            &["get", "list", "watch", "create", "delete"],
        ),
        // An abort lists the candidate's pods to say why they failed.
        rules("", "pods", &["list"]),
        // A namespace's weir.dev/freeze annotation.
        rules("", "namespaces", &["get"]),
    ]
    .into_iter()
    .flatten()
    .collect()
}

pub fn crd_rules() -> BTreeSet<String> {
    let mut cluster_wide = rules(
        "apiextensions.k8s.io",
        &format!("customresourcedefinitions[{CRD}]"),
        &["list", "watch"],
    );
    cluster_wide.extend(rules(
        "weir.dev",
        "metrictemplates",
        &["get", "list", "watch"],
    ));
    cluster_wide.extend(rules("gateway.networking.k8s.io", "gateways", &["get"]));
    cluster_wide.extend(rules(
        "gateway.networking.k8s.io",
        "gatewayclasses",
        &["get"],
    ));
    cluster_wide
}

pub fn lease_rules(lease: &str) -> BTreeSet<String> {
    let mut lease_rules = rules("coordination.k8s.io", "leases", &["create"]);
    lease_rules.extend(rules(
        "coordination.k8s.io",
        &format!("leases[{lease}]"),
        &["get", "patch"],
    ));
    lease_rules
}

pub fn union(sets: &[&BTreeSet<String>]) -> BTreeSet<String> {
    sets.iter().flat_map(|s| s.iter().cloned()).collect()
}

/// "Kind name" of the objects of `release` in `namespaces`, found by its instance label, and
/// its cluster-scoped objects, found by name.
pub async fn release_objects(client: &Client, namespaces: &[&str], release: &str) -> Vec<String> {
    async fn named<K>(client: &Client, ns: &str, selector: &str) -> Vec<String>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        let listed = api
            .list(&ListParams::default().labels(selector))
            .await
            .expect("list the release's objects");
        listed
            .items
            .iter()
            .map(|o| format!("{} {ns}/{}", K::kind(&()), o.name_any()))
            .collect()
    }
    let selector = format!("app.kubernetes.io/instance={release}");
    let mut found = Vec::new();
    for ns in namespaces {
        found.extend(named::<Deployment>(client, ns, &selector).await);
        found.extend(named::<ServiceAccount>(client, ns, &selector).await);
        found.extend(named::<Service>(client, ns, &selector).await);
        found.extend(named::<PodDisruptionBudget>(client, ns, &selector).await);
        found.extend(named::<ConfigMap>(client, ns, &selector).await);
        found.extend(named::<Role>(client, ns, &selector).await);
        found.extend(named::<RoleBinding>(client, ns, &selector).await);
    }
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    if cluster_roles.get_opt(release).await.unwrap().is_some() {
        found.push(format!("ClusterRole {release}"));
    }
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    if bindings.get_opt(release).await.unwrap().is_some() {
        found.push(format!("ClusterRoleBinding {release}"));
    }
    found.sort();
    found
}

/// Installs the chart as release `ns` (its objects are named after it, so parallel tests do
/// not collide on cluster-scoped names) in a namespace enforcing the restricted Pod Security
/// Standard, proves its RBAC with the operator binary run as its ServiceAccount, then
/// upgrades and uninstalls it. `scoped`: with `watchNamespaces`, else cluster-wide.
pub async fn install_and_prove(client: Client, ns: String, scoped: bool) {
    support::install_crds(&client).await;
    let watched = ExtraNamespace::create(&client, "weir-watched").await;
    let unwatched = ExtraNamespace::create(&client, "weir-unwatched").await;
    let _cleanup = ClusterScopedCleanup { name: ns.clone() };
    let chart = ChartInstall {
        client: &client,
        ns: &ns,
        release: &ns,
        watched: &watched.name,
        unwatched: &unwatched.name,
        scoped,
    };
    kubectl(&[
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ])
    .await;
    chart.refuses_a_wrong_value().await;
    chart.install().await;
    let token_config = chart.grants_exactly_weirs_rules().await;
    chart.refuses_what_weir_does_not_need(&token_config).await;
    chart.runs_a_canary_with_the_token(&token_config).await;
    chart.upgrade_reaches_the_operator(&token_config).await;
    chart.uninstall_leaves_nothing_but_the_crd().await;
}

/// One install of the chart under test, and the steps that prove it.
struct ChartInstall<'a> {
    client: &'a Client,
    /// The namespace the chart is installed in.
    ns: &'a str,
    release: &'a str,
    /// A namespace the operator watches, and one it does not (when `scoped`).
    watched: &'a str,
    unwatched: &'a str,
    /// Installed with `watchNamespaces`, else cluster-wide.
    scoped: bool,
}

impl ChartInstall<'_> {
    /// A wrong value stops the install before anything is created.
    async fn refuses_a_wrong_value(&self) {
        let (release, ns) = (self.release, self.ns);
        let bad = values_file(&json!({"replicaCount": "two"}));
        let (ok, stdout, stderr) =
            try_helm(&["install", release, CHART, "-n", ns, "-f", &bad]).await;
        assert!(!ok, "helm install accepted replicaCount: two");
        assert!(
            format!("{stdout}{stderr}").contains("at '/replicaCount': got string, want integer"),
            "{stdout}{stderr}"
        );
        assert_eq!(helm(&["list", "-q", "-n", ns]).await.trim(), "");
    }

    /// Cluster-wide: one replica, election forced on. Scoped: two replicas (election, PDB).
    /// Admitted under the restricted Pod Security Standard, and (as kwok runs them) ready.
    async fn install(&self) {
        let (values, replicas) = if self.scoped {
            (
                json!({"replicaCount": 2, "watchNamespaces": [self.watched]}),
                2,
            )
        } else {
            (json!({"leaderElection": {"enabled": true}}), 1)
        };
        let file = values_file(&values);
        let (release, ns) = (self.release, self.ns);
        helm(&[
            "install",
            release,
            CHART,
            "-n",
            ns,
            "-f",
            &file,
            "--wait",
            "--timeout",
            "3m",
        ])
        .await;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let selector = format!("app.kubernetes.io/instance={release}");
        wait_for_all(
            pods,
            &selector,
            DEADLINE,
            "the chart's pods ready",
            |pods| pods.len() == replicas && pods.iter().all(|p| pod_is_ready(p)),
        )
        .await;
    }

    /// What the chart's ServiceAccount may do beyond what any ServiceAccount may: exactly
    /// Weir's rules, where they belong. Returns a kubeconfig with the account's token.
    async fn grants_exactly_weirs_rules(&self) -> String {
        let ns = self.ns;
        kubectl(&["create", "serviceaccount", "baseline", "-n", ns]).await;
        let token_config = service_account_kubeconfig(ns, self.release).await;
        let baseline_config = service_account_kubeconfig(ns, "baseline").await;
        let operator_client = client_from(&token_config).await;
        let baseline_client = client_from(&baseline_config).await;
        let (work, crd, lease) = (watch_rules(), crd_rules(), lease_rules(self.release));
        let expected = if self.scoped {
            [
                (self.watched, union(&[&crd, &work])),
                (self.unwatched, crd.clone()),
                (ns, union(&[&crd, &lease])),
            ]
        } else {
            [
                (self.watched, union(&[&crd, &work])),
                (self.unwatched, union(&[&crd, &work])),
                (ns, union(&[&crd, &work, &lease])),
            ]
        };
        for (namespace, expected) in expected {
            let baseline = granted(&baseline_client, namespace).await;
            let own: BTreeSet<String> = granted(&operator_client, namespace)
                .await
                .difference(&baseline)
                .cloned()
                .collect();
            assert_eq!(own, expected, "the chart's rights in namespace {namespace}");
        }
        token_config
    }

    /// The same token, refused what Weir does not need.
    async fn refuses_what_weir_does_not_need(&self, token_config: &str) {
        let (watched, unwatched, scoped) = (self.watched, self.unwatched, self.scoped);
        let (ok, _, stderr) = kubectl_as(token_config, &["get", "secrets", "-n", watched]).await;
        assert!(
            !ok && stderr.contains("cannot list resource \"secrets\""),
            "reading Secrets: {stderr}"
        );
        let (ok, _, stderr) = kubectl_as(token_config, &["get", CRD, "-n", watched]).await;
        assert!(ok, "listing Microservices where it watches: {stderr}");
        let (ok, _, stderr) = kubectl_as(token_config, &["get", CRD, "-n", unwatched]).await;
        assert_eq!(
            ok,
            !scoped,
            "listing Microservices in a namespace {} watch: {stderr}",
            if scoped { "it does not" } else { "it may" }
        );
        if scoped {
            assert!(
                stderr.contains("cannot list resource \"microservices\""),
                "{stderr}"
            );
            let (ok, _, stderr) = kubectl_as(token_config, &["get", CRD, "-A"]).await;
            assert!(!ok && stderr.contains("at the cluster scope"), "{stderr}");
        }
    }

    /// The operator binary with nothing but that token and the chart's arguments carries a
    /// canary through, holds the Lease, and is refused nothing.
    async fn runs_a_canary_with_the_token(&self, token_config: &str) {
        let (client, ns, release) = (self.client, self.ns, self.release);
        let (mut args, env) = chart_operator(client, ns, release).await;
        for flag in [
            "--leader-elect=true".to_string(),
            format!("--lease-namespace={ns}"),
            format!("--lease-name={release}"),
        ] {
            assert!(args.contains(&flag), "{flag} in {args:?}");
        }
        if self.scoped {
            let flag = format!("--namespace={}", self.watched);
            assert!(args.contains(&flag), "{args:?}");
        } else {
            // All namespaces would reach into other tests' namespaces: the ClusterRole grants
            // them all (checked above), the process here watches one.
            assert!(
                !args.iter().any(|a| a.starts_with("--namespace=")),
                "{args:?}"
            );
            args.push(format!("--namespace={}", self.watched));
        }
        let identity = format!("{release}-0");
        let operator = OperatorAs::start(token_config, &args, &env, &identity).await;
        release_a_canary(client, self.watched).await;
        let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
        let lease = leases.get(release).await.expect("the Lease exists");
        assert_eq!(
            lease.spec.and_then(|s| s.holder_identity).as_deref(),
            Some(identity.as_str())
        );
        let log = operator.log_text();
        assert!(
            !log.to_lowercase().contains("forbidden"),
            "the operator was refused something: {log}"
        );
        operator.stop().await;
    }

    /// Upgrade: a changed value reaches the operator's arguments, which it still runs with.
    async fn upgrade_reaches_the_operator(&self, token_config: &str) {
        let (client, ns, release) = (self.client, self.ns, self.release);
        helm(&[
            "upgrade",
            release,
            CHART,
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "logFormat=json",
            "--wait",
            "--timeout",
            "3m",
        ])
        .await;
        let (mut upgraded, env) = chart_operator(client, ns, release).await;
        assert!(
            upgraded.contains(&"--log-format=json".to_string()),
            "{upgraded:?}"
        );
        if !self.scoped {
            upgraded.push(format!("--namespace={}", self.watched));
        }
        let identity = format!("{release}-1");
        let operator = OperatorAs::start(token_config, &upgraded, &env, &identity).await;
        operator.wait_reconciled().await;
        assert_logs_json(&operator.log_text());
        operator.stop().await;
    }

    /// Uninstall: nothing of the release is left; the CRD stays, as Helm leaves crds/.
    async fn uninstall_leaves_nothing_but_the_crd(&self) {
        let (client, ns, release) = (self.client, self.ns, self.release);
        let namespaces = [ns, self.watched, self.unwatched];
        let before = release_objects(client, &namespaces, release).await;
        assert_eq!(
            before,
            self.installed_objects(),
            "what the release installed"
        );
        helm(&["uninstall", release, "-n", ns, "--wait", "--timeout", "2m"]).await;
        assert_eq!(
            release_objects(client, &namespaces, release).await,
            Vec::<String>::new(),
            "left behind by helm uninstall"
        );
        assert_eq!(helm(&["list", "-q", "-n", ns]).await.trim(), "");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        assert!(crds.get_opt(CRD).await.unwrap().is_some(), "the CRD stays");
    }

    /// "Kind name" of every object the install created, sorted as `release_objects` lists.
    fn installed_objects(&self) -> Vec<String> {
        let (ns, release, watched) = (self.ns, self.release, self.watched);
        let mut expected = vec![
            format!("ClusterRole {release}"),
            format!("ClusterRoleBinding {release}"),
            format!("Deployment {ns}/{release}"),
            format!("Role {ns}/{release}-leader-election"),
            format!("RoleBinding {ns}/{release}-leader-election"),
            format!("Service {ns}/{release}-metrics"),
            format!("ServiceAccount {ns}/{release}"),
        ];
        if self.scoped {
            expected.extend([
                format!("PodDisruptionBudget {ns}/{release}"),
                format!("Role {watched}/{release}"),
                format!("RoleBinding {watched}/{release}"),
            ]);
        }
        expected.sort();
        expected
    }
}
