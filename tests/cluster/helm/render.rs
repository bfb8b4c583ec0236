//! Rendering the chart offline: lint, schema errors, contradictions between values, and
//! what the values become.

use serde_json::{Value, json};

use super::{CRD, all_features, operator_args};
use crate::support::helm::{CHART, documents, find, kinds, template, try_helm, values_file};

pub async fn lint_passes_on_good_values() {
    let good = [
        json!({}),
        all_features(),
        json!({"watchNamespaces": ["team-a", "team-b"]}),
    ];
    for values in good {
        let file = values_file(&values);
        let (ok, stdout, stderr) = try_helm(&["lint", "--strict", CHART, "-f", &file]).await;
        assert!(ok, "helm lint --strict with {values}: {stdout}{stderr}");
    }
}

/// Values of the wrong type or shape, and what the schema says of each.
pub fn schema_errors() -> [(Value, &'static str); 8] {
    [
        (
            json!({"replicaCount": "two"}),
            "at '/replicaCount': got string, want integer",
        ),
        (
            json!({"replicas": 2}),
            "additional properties 'replicas' not allowed",
        ),
        (
            json!({"logFormat": "xml"}),
            "at '/logFormat': value must be one of 'text', 'json'",
        ),
        (
            json!({"watchNamespaces": ["Team_A"]}),
            "at '/watchNamespaces/0': 'Team_A' does not match pattern",
        ),
        (
            json!({"defaultResources": {"cpuRequest": "lots"}}),
            "at '/defaultResources/cpuRequest'",
        ),
        (
            json!({"serviceMonitor": {"intervall": "30s"}}),
            "at '/serviceMonitor': additional properties 'intervall' not allowed",
        ),
        (
            json!({"leaderElection": {"enabled": "yes"}}),
            "at '/leaderElection/enabled'",
        ),
        (
            json!({"prometheusRule": {"alerts": {"degraded": {"for": "five minutes"}}}}),
            "at '/prometheusRule/alerts/degraded/for'",
        ),
    ]
}

/// Schema errors: `helm lint` and every rendering (template, install, upgrade) refuse them.
pub async fn schema_errors_are_refused_naming_the_value() {
    for (values, message) in schema_errors() {
        let file = values_file(&values);
        for command in [
            vec!["lint", "--strict", CHART, "-f", &file],
            vec!["template", "weir", CHART, "-f", &file],
        ] {
            let (ok, stdout, stderr) = try_helm(&command).await;
            let output = format!("{stdout}{stderr}");
            assert!(!ok, "helm {} accepted {values}", command[0]);
            assert!(
                output.contains(message),
                "helm {} with {values} should say {message:?}; it said: {output}",
                command[0]
            );
        }
    }
}

/// Not a type error, a contradiction between values: the template refuses to render (lint
/// only reports a template's `fail` as information).
pub async fn contradictions_are_refused_at_render_time() {
    let contradictions = [
        (
            json!({"replicaCount": 2, "leaderElection": {"enabled": false}}),
            "leaderElection.enabled=false needs replicaCount: 1",
        ),
        (
            json!({"replicaCount": 2, "podDisruptionBudget": {"minAvailable": 2}}),
            "podDisruptionBudget.minAvailable must be below replicaCount",
        ),
    ];
    for (values, message) in contradictions {
        let file = values_file(&values);
        let (ok, stdout, stderr) = try_helm(&["template", "weir", CHART, "-f", &file]).await;
        assert!(!ok, "helm template accepted {values}");
        assert!(
            stderr.contains(message),
            "helm template with {values} should say {message:?}; it said: {stdout}{stderr}"
        );
    }
}

/// Defaults: one replica without election (and a Recreate upgrade), all namespaces.
pub async fn defaults_render_one_replica_without_election() {
    let defaults = documents(&template("weir", "weir-system", &json!({})).await);
    assert_eq!(
        kinds(&defaults),
        [
            "ClusterRole /weir",
            "ClusterRoleBinding /weir",
            "Deployment weir-system/weir",
            "Service weir-system/weir-metrics",
            "ServiceAccount weir-system/weir",
        ]
    );
    assert_eq!(
        operator_args(&defaults, "weir"),
        [
            "--leader-elect=false",
            "--default-cpu-request=100m",
            "--default-memory-request=128Mi",
            "--default-memory-limit=256Mi",
            "--log-format=text",
            "--resync-seconds=300",
            "--track-configmaps=true",
            "--track-secrets=false",
            "--pod-failure-reasons=true",
            "--namespace-freeze=true",
        ]
    );
    let deployment = find(&defaults, "Deployment", "weir");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/weir-dev/weir:0.1.0",
        "the image defaults to the appVersion"
    );
}

/// Every setting away from its default, two replicas: election, lease, PDB.
pub fn every_setting_becomes_a_flag_or_an_object(all: &[Value]) {
    assert_eq!(
        kinds(all),
        [
            "ClusterRole /weir",
            "ClusterRoleBinding /weir",
            "ConfigMap weir-system/weir-dashboard",
            "ConfigMap weir-system/weir-kube-state-metrics",
            "Deployment weir-system/weir",
            "MetricTemplate /weir-gateway-latency",
            "MetricTemplate /weir-gateway-success-rate",
            "PodDisruptionBudget weir-system/weir",
            "PrometheusRule weir-system/weir",
            "Role weir-system/weir-leader-election",
            "RoleBinding weir-system/weir-leader-election",
            "Service weir-system/weir-metrics",
            "ServiceAccount weir-system/weir",
            "ServiceMonitor weir-system/weir",
        ]
    );
    assert_eq!(
        operator_args(all, "weir"),
        [
            "--leader-elect=true",
            "--lease-namespace=weir-system",
            "--lease-name=weir-leader",
            "--lease-seconds=30",
            "--prometheus-address=http://prometheus.monitoring:9090",
            "--analysis-allowed-hosts=prometheus.monitoring,*.svc.cluster.local",
            "--default-cpu-request=50m",
            "--default-memory-request=64Mi",
            "--default-cpu-limit=1",
            "--default-memory-limit=128Mi",
            "--log-format=json",
            "--resync-seconds=120",
            "--track-configmaps=false",
            "--track-secrets=false",
            "--pod-failure-reasons=false",
            "--namespace-freeze=false",
            "--freeze=the annual audit",
        ]
    );
    let deployment = find(all, "Deployment", "weir");
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env[0],
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    );
    assert_eq!(
        env[1],
        json!({"name": "RUST_LOG", "value": "info,weir=debug"})
    );
    let pdb = find(all, "PodDisruptionBudget", "weir");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let lease_role = find(all, "Role", "weir-leader-election");
    assert_eq!(
        lease_role["rules"][1]["resourceNames"],
        json!(["weir-leader"])
    );
}

/// The hardening the issue asks for, which the restricted Pod Security Standard (checked
/// at install) does not cover entirely.
pub fn the_operator_container_is_hardened(all: &[Value]) {
    let deployment = find(all, "Deployment", "weir");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"],
        json!({
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        container["ports"],
        json!([{"name": "http-metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    let service = find(all, "Service", "weir-metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "http-metrics");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
}

/// watchNamespaces: Roles there, a flag listing them, only the CRD read cluster-wide.
pub async fn watch_namespaces_grant_roles_only_there() {
    let values = json!({"watchNamespaces": ["team-a", "team-b"]});
    let scoped = documents(&template("weir", "weir-system", &values).await);
    assert_eq!(
        kinds(&scoped),
        [
            "ClusterRole /weir",
            "ClusterRoleBinding /weir",
            "Deployment weir-system/weir",
            "Role team-a/weir",
            "Role team-b/weir",
            "RoleBinding team-a/weir",
            "RoleBinding team-b/weir",
            "Service weir-system/weir-metrics",
            "ServiceAccount weir-system/weir",
        ]
    );
    assert!(
        operator_args(&scoped, "weir").contains(&"--namespace=team-a,team-b".to_string()),
        "{:?}",
        operator_args(&scoped, "weir")
    );
    assert_eq!(
        find(&scoped, "ClusterRole", "weir")["rules"],
        json!([{
            "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
            "resourceNames": [CRD], "verbs": ["list", "watch"]
        }, {
            "apiGroups": ["weir.dev"], "resources": ["metrictemplates"],
            "verbs": ["get", "list", "watch"]
        }, {
            "apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways", "gatewayclasses"],
            "verbs": ["get"]
        }])
    );
}
