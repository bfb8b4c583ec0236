//! The Helm chart: it lints, its schema refuses wrong values with a message naming them, its
//! values become the operator's flags, every rendering is accepted by the API server, its
//! alerts and dashboard read metrics the operator really exports and fire when they should,
//! and its RBAC is exactly enough: the operator binary, run with nothing but a token of the
//! chart's ServiceAccount and the arguments the chart gives it, carries a canary release
//! through, while the same token cannot read a Secret or (with `watchNamespaces`) reach a
//! namespace it does not watch. Upgrade and uninstall leave nothing of the release behind.

mod support;

use std::collections::BTreeSet;

use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use support::gateway::FakeGateway;
use support::helm::{
    CHART, ClusterScopedCleanup, ExtraNamespace, OperatorAs, chart_operator, client_from,
    documents, find, granted, helm, install_monitoring_crds, kinds, kubectl_as, rules,
    scratch_file, service_account_kubeconfig, template, try_helm, values_file,
};
use support::microservice::{self as ms_support, pod_is_ready};
use support::release::{ACTION, DEADLINE, GITOPS, canary, wait_ms, wait_seen};
use support::{kubectl, try_kubectl, wait_for_all, with_temp_ns};
use weir::api::{Microservice, Phase, Slot};

const V2: &str = "registry.example/app:2";
const CRD: &str = "microservices.weir.dev";

/// Every optional feature on, and every operator setting away from its default.
fn all_features() -> Value {
    json!({
        "replicaCount": 2,
        "prometheusAddress": "http://prometheus.monitoring:9090",
        "analysisAllowedHosts": ["prometheus.monitoring", "*.svc.cluster.local"],
        "defaultResources": {"cpuRequest": "50m", "memoryRequest": "64Mi", "cpuLimit": "1", "memoryLimit": "128Mi"},
        "logFormat": "json",
        "logLevel": "info,weir=debug",
        "resyncSeconds": 120,
        "leaderElection": {"leaseName": "weir-leader", "leaseSeconds": 30},
        "serviceAccount": {"annotations": {"example.com/role": "weir"}},
        "podAnnotations": {"example.com/scrape": "true"},
        "podLabels": {"team": "platform"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "weir"}}
        }],
        "service": {"annotations": {"example.com/metrics": "true"}},
        "serviceMonitor": {"enabled": true, "scrapeTimeout": "10s", "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": true, "labels": {"release": "prometheus"}, "additionalLabels": {"team": "platform"}},
        "grafanaDashboard": {"enabled": true, "annotations": {"grafana_folder": "Platform"}}
    })
}

/// The operator container of a rendered chart: its arguments.
fn operator_args(documents: &[Value], fullname: &str) -> Vec<String> {
    let deployment = find(documents, "Deployment", fullname);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "operator");
    serde_json::from_value(container["args"].clone()).expect("args are strings")
}

#[tokio::test]
async fn lint_passes_and_wrong_values_fail_with_a_message_naming_them() {
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

    // Schema errors: `helm lint` and every rendering (template, install, upgrade) refuse them.
    let wrong = [
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
    ];
    for (values, message) in wrong {
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

    // Not a type error, a contradiction between values: the template refuses to render (lint
    // only reports a template's `fail` as information).
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

#[tokio::test]
async fn values_become_the_operators_flags_and_objects() {
    // Defaults: one replica without election (and a Recreate upgrade), all namespaces.
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
        ]
    );
    let deployment = find(&defaults, "Deployment", "weir");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/weir-dev/weir:0.1.0",
        "the image defaults to the appVersion"
    );

    // Every setting away from its default, two replicas: election, lease, PDB.
    let all = documents(&template("weir", "weir-system", &all_features()).await);
    assert_eq!(
        kinds(&all),
        [
            "ClusterRole /weir",
            "ClusterRoleBinding /weir",
            "ConfigMap weir-system/weir-dashboard",
            "Deployment weir-system/weir",
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
        operator_args(&all, "weir"),
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
        ]
    );
    let deployment = find(&all, "Deployment", "weir");
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
    let pdb = find(&all, "PodDisruptionBudget", "weir");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let lease_role = find(&all, "Role", "weir-leader-election");
    assert_eq!(
        lease_role["rules"][1]["resourceNames"],
        json!(["weir-leader"])
    );

    // The hardening the issue asks for, which the restricted Pod Security Standard (checked
    // at install) does not cover entirely.
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
    let service = find(&all, "Service", "weir-metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "http-metrics");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);

    // watchNamespaces: Roles there, a flag listing them, only the CRD read cluster-wide.
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
        }])
    );
}

#[tokio::test]
async fn every_rendering_is_accepted_by_the_api_server() {
    with_temp_ns(|client, ns| async move {
        install_monitoring_crds(&client).await;
        let team_a = ExtraNamespace::create(&client, "weir-team-a").await;
        let team_b = ExtraNamespace::create(&client, "weir-team-b").await;
        let renderings = [
            ("the defaults", json!({})),
            ("every optional feature", all_features()),
            (
                "watchNamespaces",
                json!({"watchNamespaces": [team_a.name, team_b.name]}),
            ),
        ];
        for (what, values) in renderings {
            let manifest = template(&ns, &ns, &values).await;
            let count = documents(&manifest).len();
            let file = scratch_file("manifests", "chart.yaml", &manifest);
            // No -n: every namespaced object must name its namespace itself.
            let (ok, stdout, stderr) = try_kubectl(&[
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "-f",
                &file,
            ])
            .await;
            assert!(ok, "{what}: the API server refused the chart: {stderr}");
            assert!(
                !stderr.contains("Warning"),
                "{what}: the API server warned: {stderr}"
            );
            assert_eq!(
                stdout
                    .lines()
                    .filter(|l| l.contains("(server dry run)"))
                    .count(),
                count,
                "{what}: every object accepted: {stdout}"
            );
        }
    })
    .await;
}

/// `--log-format=json` took: the log has lines, each a JSON object.
fn assert_logs_json(log: &str) {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the operator logged nothing");
    assert!(
        lines
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v.is_object())),
        "the operator logs JSON lines: {log}"
    );
}

/// The metric names a PromQL expression reads (`weir_*` identifiers).
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("weir_"))
        .map(str::to_string)
        .collect()
}

/// The values an expression's `phase="..."` matchers ask for.
fn phases(expr: &str) -> BTreeSet<String> {
    expr.split("phase=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// `promtool test rules` input: series of this release's job (and, for the Degraded alert, a
/// decoy of another job that must not count), and when each alert must and must not fire.
fn alert_tests(rules_file: &str, job: &str, ns: &str) -> Value {
    let own = |labels: &str| format!("{{job=\"{job}\",namespace=\"{ns}\"{labels}}}");
    let fired = |severity: &str, extra: Value| {
        let mut labels =
            json!({"job": job, "namespace": ns, "severity": severity, "team": "platform"});
        if let (Some(labels), Some(extra)) = (labels.as_object_mut(), extra.as_object()) {
            labels.extend(extra.clone());
        }
        json!([{"exp_labels": labels}])
    };
    let check = |at: &str, alert: &str, expected: Value| json!({"eval_time": at, "alertname": alert, "exp_alerts": expected});
    json!({
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": format!("weir_microservices{}", own(",phase=\"Progressing\"")), "values": "1x60"},
                    {"series": format!("weir_microservices{}", own(",phase=\"Degraded\"")), "values": "0x10 1x30"},
                    {"series": format!("weir_microservices{{job=\"another-weir\",namespace=\"{ns}\",phase=\"Degraded\"}}"), "values": "1x60"},
                    {"series": format!("weir_reconcile_errors_total{}", own(",category=\"kubernetes\"")), "values": "0x10 0+1x40"},
                    {"series": format!("up{}", own("")), "values": "1x20 0x40"}
                ],
                "alert_rule_test": [
                    check("28m", "WeirReleaseStuck", json!([])),
                    check("32m", "WeirReleaseStuck", fired("warning", json!({}))),
                    check("14m", "WeirMicroserviceDegraded", json!([])),
                    check("18m", "WeirMicroserviceDegraded", fired("warning", json!({}))),
                    check("25m", "WeirReconcileErrors", json!([])),
                    check("29m", "WeirReconcileErrors", fired("warning", json!({"category": "kubernetes"}))),
                    check("29m", "WeirOperatorDown", json!([])),
                    check("33m", "WeirOperatorDown", fired("critical", json!({}))),
                    check("33m", "WeirReleasePaused", json!([]))
                ]
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": format!("weir_microservices{}", own(",phase=\"Paused\"")), "values": "1x1560"}
                ],
                "alert_rule_test": [
                    check("23h", "WeirReleasePaused", json!([])),
                    check("25h", "WeirReleasePaused", fired("info", json!({})))
                ]
            }
        ]
    })
}

#[tokio::test]
async fn alerts_and_dashboard_read_the_operators_real_metrics_and_fire_when_they_should() {
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        let mut values = all_features();
        // One replica without election and only this namespace, so the flags can run here.
        values["replicaCount"] = json!(1);
        values["watchNamespaces"] = json!([ns]);
        let rendered = documents(&template(&ns, &ns, &values).await);
        let args = operator_args(&rendered, &ns);

        // Every flag the chart can pass is one the operator accepts: it runs with them all
        // (as the test's own user) and logs JSON as told.
        let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG is set");
        let env = [("RUST_LOG".to_string(), "info".to_string())];
        let operator = OperatorAs::start(&kubeconfig, &args, &env, &format!("{ns}-metrics")).await;
        assert_logs_json(&operator.log_text());
        // One reconcile, so that every family has samples.
        let api =
            ms_support::create(&client, &ns, &ms_support::microservice("web", json!({}))).await;
        ms_support::wait_ready(&api, "web", 1, DEADLINE).await;
        let (status, exported) = support::operator::http_get(&operator.metrics_addr, "/metrics")
            .await
            .expect("/metrics answers");
        assert_eq!(status, 200);
        let samples: BTreeSet<&str> = exported
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let exported_phases = phases(&exported);

        // The rules: valid for Prometheus, reading series the operator exports...
        let rule = find(&rendered, "PrometheusRule", &ns);
        let groups = &rule["spec"]["groups"];
        let exprs: Vec<String> = groups[0]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|r| r["expr"].as_str().expect("an expr").to_string())
            .collect();
        assert_eq!(exprs.len(), 5, "{exprs:#?}");
        for expr in &exprs {
            for name in metric_names(expr) {
                assert!(
                    samples.contains(name.as_str()),
                    "{expr}: the operator exports no {name}: {exported}"
                );
            }
            for phase in phases(expr) {
                assert!(
                    exported_phases.contains(&phase),
                    "{expr}: no phase {phase} in {exported}"
                );
            }
        }
        let rules_text = serde_json::to_string(&json!({"groups": groups})).unwrap();
        let rules_file = scratch_file("alerts", "rules.json", &rules_text);
        let (ok, stdout, stderr) =
            support::helm::run("promtool", &["check", "rules", &rules_file]).await;
        assert!(ok, "promtool check rules: {stdout}{stderr}");

        // ...and firing when, and only when, they should (annotations are left to the check
        // above: their text is not what is tested here).
        let mut bare = groups.clone();
        for rule in bare[0]["rules"].as_array_mut().unwrap() {
            rule.as_object_mut().unwrap().remove("annotations");
        }
        let bare_file = scratch_file(
            "alerts",
            "bare-rules.json",
            &json!({"groups": bare}).to_string(),
        );
        let job = format!("{ns}-metrics");
        let tests = alert_tests(&bare_file, &job, &ns);
        let tests_file = scratch_file("alerts", "tests.json", &tests.to_string());
        let (ok, stdout, stderr) =
            support::helm::run("promtool", &["test", "rules", &tests_file]).await;
        assert!(ok, "promtool test rules: {stdout}{stderr}");

        // The dashboard: JSON with panels over each of the operator's metric families.
        let dashboard = find(&rendered, "ConfigMap", &format!("{ns}-dashboard"));
        assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
        let json_text = dashboard["data"]["weir.json"].as_str().expect("weir.json");
        let board: Value = serde_json::from_str(json_text).expect("the dashboard is JSON");
        let mut read = BTreeSet::new();
        for panel in board["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("an expr");
                for name in metric_names(expr) {
                    assert!(
                        samples.contains(name.as_str()),
                        "panel {}: the operator exports no {name}",
                        panel["title"]
                    );
                    read.insert(name);
                }
            }
        }
        let families: BTreeSet<String> = [
            "weir_microservices",
            "weir_reconciles_total",
            "weir_reconcile_errors_total",
            "weir_reconcile_duration_seconds_bucket",
        ]
        .map(String::from)
        .into();
        assert_eq!(read, families, "the dashboard shows every metric family");
        operator.stop().await;
    })
    .await;
}

/// The rules Weir needs where it watches, as `granted` lists them.
fn watch_rules() -> BTreeSet<String> {
    let children = ["get", "list", "watch", "create", "patch", "delete"];
    [
        rules("weir.dev", "microservices", &["list", "watch", "patch"]),
        rules("weir.dev", "microservices/status", &["patch"]),
        rules("apps", "deployments", &children),
        rules("", "services", &children),
        rules("policy", "poddisruptionbudgets", &children),
        rules("autoscaling", "horizontalpodautoscalers", &children),
        rules("gateway.networking.k8s.io", "httproutes", &children),
        rules("events.k8s.io", "events", &["create", "patch"]),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn crd_rules() -> BTreeSet<String> {
    rules(
        "apiextensions.k8s.io",
        &format!("customresourcedefinitions[{CRD}]"),
        &["list", "watch"],
    )
}

fn lease_rules(lease: &str) -> BTreeSet<String> {
    let mut lease_rules = rules("coordination.k8s.io", "leases", &["create"]);
    lease_rules.extend(rules(
        "coordination.k8s.io",
        &format!("leases[{lease}]"),
        &["get", "patch"],
    ));
    lease_rules
}

fn union(sets: &[&BTreeSet<String>]) -> BTreeSet<String> {
    sets.iter().flat_map(|s| s.iter().cloned()).collect()
}

/// "Kind name" of the objects of `release` in `namespaces`, found by its instance label, and
/// its cluster-scoped objects, found by name.
async fn release_objects(client: &Client, namespaces: &[&str], release: &str) -> Vec<String> {
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

/// Microservice `web` in `ns`, released as a canary through the Gateway API by whatever
/// operator watches `ns`: created (Deployment, Services, HTTPRoute, PDB, HPA, an event),
/// paused at 50%, promoted with the action annotation (removed once handled), the old slot
/// deleted after its delay, then routing and autoscaling dropped (their children deleted).
/// Each step needs one of the operator's rights.
async fn release_a_canary(client: &Client, ns: &str) {
    let _gateway = FakeGateway::start(client.clone(), ns);
    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    let spec = json!({
        "replicas": 2,
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
        "rollout": canary(json!([{"setWeight": 50}, {"pause": {}}]))
    });
    let ms = ms_support::microservice("web", spec);
    api.patch("web", &PatchParams::apply(GITOPS), &Patch::Apply(&ms))
        .await
        .expect("apply the Microservice");
    let first = wait_ms(&api, "web", DEADLINE, "web Healthy in slot blue", |ms| {
        ms.status.as_ref().is_some_and(|s| {
            s.observed_generation == ms.metadata.generation
                && s.phase == Some(Phase::Healthy)
                && s.stable_revision.is_some()
                && s.release.is_none()
                && s.active_slot == Some(Slot::Blue)
        })
    })
    .await;
    let stable = first.status.and_then(|s| s.stable_revision).unwrap();

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    assert!(deployments.get_opt("web-blue").await.unwrap().is_some());
    for service in ["web", "web-blue", "web-green"] {
        assert!(
            services.get_opt(service).await.unwrap().is_some(),
            "Service {service}"
        );
    }
    assert!(
        routes.get_opt("web").await.unwrap().is_some(),
        "HTTPRoute web"
    );
    assert!(pdbs.get_opt("web").await.unwrap().is_some(), "PDB web");
    assert!(hpas.get_opt("web").await.unwrap().is_some(), "HPA web");
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    wait_for_all(
        events,
        "",
        DEADLINE,
        "a Created event about web from weir",
        |events| {
            events.iter().any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
                    && e.reason.as_deref() == Some("Created")
                    && e.reporting_controller.as_deref() == Some("weir")
            })
        },
    )
    .await;

    ms_support::edit_spec(&api, "web", json!({"image": V2})).await;
    let paused = wait_ms(&api, "web", DEADLINE, "web Paused at 50%", |ms| {
        ms.status.as_ref().is_some_and(|s| {
            s.phase == Some(Phase::Paused)
                && s.release
                    .as_ref()
                    .is_some_and(|r| r.revision != stable && r.step_index == 1 && r.weight == 50)
        })
    })
    .await;
    let candidate = paused.status.unwrap().release.unwrap().revision;

    support::release::act(&api, "web", "promote").await;
    let what = format!("web Healthy on {candidate} in slot green, the action annotation removed");
    wait_ms(&api, "web", DEADLINE, &what, |ms| {
        !ms.annotations().contains_key(ACTION)
            && ms.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Healthy)
                    && s.release.is_none()
                    && s.stable_revision.as_deref() == Some(candidate.as_str())
                    && s.active_slot == Some(Slot::Green)
            })
    })
    .await;
    let show = |d: &Deployment| format!("{:?}", d.spec.as_ref().and_then(|s| s.replicas));
    wait_seen(
        &deployments,
        "web-blue",
        DEADLINE,
        "the old slot deleted",
        show,
        |d| d.is_none(),
    )
    .await;

    let generation = ms_support::edit_spec(
        &api,
        "web",
        json!({"rollout": null, "autoscaling": null, "replicas": 1}),
    )
    .await;
    let gone = |what: &str| format!("{what} deleted once no longer wanted");
    wait_seen(
        &hpas,
        "web",
        DEADLINE,
        &gone("HPA web"),
        |_| String::new(),
        |h| h.is_none(),
    )
    .await;
    wait_seen(
        &pdbs,
        "web",
        DEADLINE,
        &gone("PDB web"),
        |_| String::new(),
        |p| p.is_none(),
    )
    .await;
    wait_seen(
        &routes,
        "web",
        DEADLINE,
        &gone("HTTPRoute web"),
        |_| String::new(),
        |r| r.is_none(),
    )
    .await;
    for service in ["web-blue", "web-green"] {
        let what = gone(&format!("Service {service}"));
        wait_seen(
            &services,
            service,
            DEADLINE,
            &what,
            |_| String::new(),
            |s| s.is_none(),
        )
        .await;
    }
    let what = "web Healthy on one replica without routing";
    wait_ms(&api, "web", DEADLINE, what, |ms| {
        ms.status.as_ref().is_some_and(|s| {
            s.observed_generation == Some(generation)
                && s.phase == Some(Phase::Healthy)
                && s.replicas == 1
                && s.ready_replicas == 1
        })
    })
    .await;
}

/// Installs the chart as release `ns` (its objects are named after it, so parallel tests do
/// not collide on cluster-scoped names) in a namespace enforcing the restricted Pod Security
/// Standard, proves its RBAC with the operator binary run as its ServiceAccount, then
/// upgrades and uninstalls it. `scoped`: with `watchNamespaces`, else cluster-wide.
async fn install_and_prove(client: Client, ns: String, scoped: bool) {
    support::install_crds(&client).await;
    let watched = ExtraNamespace::create(&client, "weir-watched").await;
    let unwatched = ExtraNamespace::create(&client, "weir-unwatched").await;
    let (watched, unwatched) = (watched.name.clone(), unwatched.name.clone());
    let release = ns.clone();
    let _cleanup = ClusterScopedCleanup {
        name: release.clone(),
    };
    kubectl(&[
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ])
    .await;

    // A wrong value stops the install before anything is created.
    let bad = values_file(&json!({"replicaCount": "two"}));
    let (ok, stdout, stderr) = try_helm(&["install", &release, CHART, "-n", &ns, "-f", &bad]).await;
    assert!(!ok, "helm install accepted replicaCount: two");
    assert!(
        format!("{stdout}{stderr}").contains("at '/replicaCount': got string, want integer"),
        "{stdout}{stderr}"
    );
    assert_eq!(helm(&["list", "-q", "-n", &ns]).await.trim(), "");

    // Cluster-wide: one replica, election forced on. Scoped: two replicas (election, PDB).
    let (values, replicas) = if scoped {
        (json!({"replicaCount": 2, "watchNamespaces": [watched]}), 2)
    } else {
        (json!({"leaderElection": {"enabled": true}}), 1)
    };
    let file = values_file(&values);
    helm(&[
        "install",
        &release,
        CHART,
        "-n",
        &ns,
        "-f",
        &file,
        "--wait",
        "--timeout",
        "3m",
    ])
    .await;
    // Admitted under the restricted Pod Security Standard, and (as kwok runs them) ready.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let selector = format!("app.kubernetes.io/instance={release}");
    wait_for_all(
        pods,
        &selector,
        DEADLINE,
        "the chart's pods ready",
        |pods| pods.len() == replicas && pods.iter().all(|p| pod_is_ready(p)),
    )
    .await;

    // What the chart's ServiceAccount may do beyond what any ServiceAccount may: exactly
    // Weir's rules, where they belong.
    kubectl(&["create", "serviceaccount", "baseline", "-n", &ns]).await;
    let token_config = service_account_kubeconfig(&ns, &release).await;
    let baseline_config = service_account_kubeconfig(&ns, "baseline").await;
    let operator_client = client_from(&token_config).await;
    let baseline_client = client_from(&baseline_config).await;
    let (work, crd, lease) = (watch_rules(), crd_rules(), lease_rules(&release));
    let expected = if scoped {
        [
            (&watched, union(&[&crd, &work])),
            (&unwatched, crd.clone()),
            (&ns, union(&[&crd, &lease])),
        ]
    } else {
        [
            (&watched, union(&[&crd, &work])),
            (&unwatched, union(&[&crd, &work])),
            (&ns, union(&[&crd, &work, &lease])),
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

    // The same token, refused what Weir does not need.
    let (ok, _, stderr) = kubectl_as(&token_config, &["get", "secrets", "-n", &watched]).await;
    assert!(
        !ok && stderr.contains("cannot list resource \"secrets\""),
        "reading Secrets: {stderr}"
    );
    let (ok, _, stderr) = kubectl_as(&token_config, &["get", CRD, "-n", &watched]).await;
    assert!(ok, "listing Microservices where it watches: {stderr}");
    let (ok, _, stderr) = kubectl_as(&token_config, &["get", CRD, "-n", &unwatched]).await;
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
        let (ok, _, stderr) = kubectl_as(&token_config, &["get", CRD, "-A"]).await;
        assert!(!ok && stderr.contains("at the cluster scope"), "{stderr}");
    }

    // The operator binary with nothing but that token and the chart's arguments.
    let deployment = release.clone();
    let (mut args, env) = chart_operator(&client, &ns, &deployment).await;
    for flag in [
        "--leader-elect=true".to_string(),
        format!("--lease-namespace={ns}"),
        format!("--lease-name={release}"),
    ] {
        assert!(args.contains(&flag), "{flag} in {args:?}");
    }
    if scoped {
        assert!(args.contains(&format!("--namespace={watched}")), "{args:?}");
    } else {
        // All namespaces would reach into other tests' namespaces: the ClusterRole grants
        // them all (checked above), the process here watches one.
        assert!(
            !args.iter().any(|a| a.starts_with("--namespace")),
            "{args:?}"
        );
        args.push(format!("--namespace={watched}"));
    }
    let identity = format!("{release}-0");
    let operator = OperatorAs::start(&token_config, &args, &env, &identity).await;
    release_a_canary(&client, &watched).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = leases.get(&release).await.expect("the Lease exists");
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

    // Upgrade: a changed value reaches the operator's arguments, which it still runs with.
    helm(&[
        "upgrade",
        &release,
        CHART,
        "-n",
        &ns,
        "--reuse-values",
        "--set",
        "logFormat=json",
        "--wait",
        "--timeout",
        "3m",
    ])
    .await;
    let (mut upgraded, env) = chart_operator(&client, &ns, &deployment).await;
    assert!(
        upgraded.contains(&"--log-format=json".to_string()),
        "{upgraded:?}"
    );
    if !scoped {
        upgraded.push(format!("--namespace={watched}"));
    }
    let operator = OperatorAs::start(&token_config, &upgraded, &env, &format!("{release}-1")).await;
    operator.wait_reconciled().await;
    assert_logs_json(&operator.log_text());
    operator.stop().await;

    // Uninstall: nothing of the release is left; the CRD stays, as Helm leaves crds/.
    let namespaces = [ns.as_str(), watched.as_str(), unwatched.as_str()];
    let before = release_objects(&client, &namespaces, &release).await;
    let mut expected = vec![
        format!("ClusterRole {release}"),
        format!("ClusterRoleBinding {release}"),
        format!("Deployment {ns}/{release}"),
        format!("Role {ns}/{release}-leader-election"),
        format!("RoleBinding {ns}/{release}-leader-election"),
        format!("Service {ns}/{release}-metrics"),
        format!("ServiceAccount {ns}/{release}"),
    ];
    if scoped {
        expected.extend([
            format!("PodDisruptionBudget {ns}/{release}"),
            format!("Role {watched}/{release}"),
            format!("RoleBinding {watched}/{release}"),
        ]);
    }
    expected.sort();
    assert_eq!(before, expected, "what the release installed");
    helm(&[
        "uninstall",
        &release,
        "-n",
        &ns,
        "--wait",
        "--timeout",
        "2m",
    ])
    .await;
    assert_eq!(
        release_objects(&client, &namespaces, &release).await,
        Vec::<String>::new(),
        "left behind by helm uninstall"
    );
    assert_eq!(helm(&["list", "-q", "-n", &ns]).await.trim(), "");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(crds.get_opt(CRD).await.unwrap().is_some(), "the CRD stays");
}

#[tokio::test]
async fn cluster_wide_install_grants_what_a_canary_needs_and_no_secrets() {
    with_temp_ns(|client, ns| install_and_prove(client, ns, false)).await;
}

#[tokio::test]
async fn watch_namespaces_install_grants_only_the_watched_namespaces() {
    with_temp_ns(|client, ns| install_and_prove(client, ns, true)).await;
}
