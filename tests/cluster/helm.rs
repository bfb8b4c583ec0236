//! The Helm chart: it lints, its schema refuses wrong values with a message naming them, its
//! values become the operator's flags, every rendering is accepted by the API server, its
//! alerts and dashboard read metrics the operator really exports and fire when they should,
//! and its RBAC is exactly enough: the operator binary, run with nothing but a token of the
//! chart's ServiceAccount and the arguments the chart gives it, carries a canary release
//! through, while the same token cannot read a Secret or (with `watchNamespaces`) reach a
//! namespace it does not watch. Upgrade and uninstall leave nothing of the release behind.

mod alerts;
mod canary;
mod install;
mod render;

use crate::support;

use std::collections::BTreeSet;

use alerts::{
    alerts_fire_when_they_should, dashboard_reads_every_metric_family, exported_metrics,
    rules_read_exported_series, run_with_the_charts_flags,
};
use install::install_and_prove;
use render::{
    contradictions_are_refused_at_render_time, defaults_render_one_replica_without_election,
    every_setting_becomes_a_flag_or_an_object, lint_passes_on_good_values,
    schema_errors_are_refused_naming_the_value, the_operator_container_is_hardened,
    watch_namespaces_grant_roles_only_there,
};
use serde_json::{Value, json};
use support::helm::{
    ExtraNamespace, documents, find, install_monitoring_crds, scratch_file, template,
};
use support::{try_kubectl, with_temp_ns};

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
        "grafanaDashboard": {"enabled": true, "annotations": {"grafana_folder": "Platform"}},
        "kubeStateMetrics": {"enabled": true},
        "metricTemplatePresets": {"enabled": true, "gateway": "traefik"},
        "trackConfig": {"configMaps": false},
        "podFailureReasons": false,
        "freeze": {"reason": "the annual audit", "namespaces": false}
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
    lint_passes_on_good_values().await;
    schema_errors_are_refused_naming_the_value().await;
    contradictions_are_refused_at_render_time().await;
}

#[tokio::test]
async fn values_become_the_operators_flags_and_objects() {
    defaults_render_one_replica_without_election().await;
    let all = documents(&template("weir", "weir-system", &all_features()).await);
    every_setting_becomes_a_flag_or_an_object(&all);
    the_operator_container_is_hardened(&all);
    watch_namespaces_grant_roles_only_there().await;
    analysis_files_are_mounted_by_the_kubelet().await;
    tracked_kinds_get_their_rights_and_flags().await;
}

/// `trackConfig`: ConfigMaps by default, Secrets only when asked, each with its rule and flag.
async fn tracked_kinds_get_their_rights_and_flags() {
    let cases = [
        (json!({}), true, false),
        (
            json!({"trackConfig": {"configMaps": false, "secrets": true}}),
            false,
            true,
        ),
    ];
    for (values, config_maps, secrets) in cases {
        let rendered = documents(&template("weir", "weir-system", &values).await);
        let args = operator_args(&rendered, "weir");
        for flag in [
            format!("--track-configmaps={config_maps}"),
            format!("--track-secrets={secrets}"),
        ] {
            assert!(args.contains(&flag), "{flag} in {args:?}");
        }
        let rules = find(&rendered, "ClusterRole", "weir")["rules"].to_string();
        let rule = |kind: &str| {
            format!(
                r#"{{"apiGroups":[""],"resources":["{kind}"],"verbs":["get","list","watch","create","delete"]}}"#
            )
        };
        assert_eq!(
            rules.contains(&rule("configmaps")),
            config_maps,
            "{values}: {rules}"
        );
        assert_eq!(
            rules.contains(&rule("secrets")),
            secrets,
            "{values}: {rules}"
        );
    }
}

/// The CA bundle and the credentials file come from a ConfigMap and a Secret the kubelet
/// mounts, each passed as a flag: the operator gets no right to read either.
async fn analysis_files_are_mounted_by_the_kubelet() {
    let values = json!({"analysis": {
        "externalMetrics": true,
        "caBundle": {"configMap": "cluster-ca"},
        "credentials": {"secret": "metrics-credentials", "key": "sets.yaml"}
    }, "notifications": {"secret": "release-sinks"}});
    let rendered = documents(&template("weir", "weir-system", &values).await);
    let args = operator_args(&rendered, "weir");
    for flag in [
        "--analysis-ca-bundle=/etc/weir/analysis-ca/ca.crt",
        "--analysis-credentials=/etc/weir/analysis-credentials/credentials.yaml",
        "--notification-sinks=/etc/weir/notification-sinks/sinks.yaml",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag} in {args:?}");
    }
    let pod = &find(&rendered, "Deployment", "weir")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][1],
        json!({"name": "analysis-credentials", "secret": {
            "secretName": "metrics-credentials", "defaultMode": 0o440,
            "items": [{"key": "sets.yaml", "path": "credentials.yaml"}]
        }})
    );
    assert_eq!(
        pod["securityContext"]["fsGroup"], 65532,
        "the operator's group reads 0440"
    );
    let mounts = &pod["containers"][0]["volumeMounts"];
    assert_eq!(mounts[0]["mountPath"], "/etc/weir/analysis-ca");
    assert_eq!(mounts[1]["mountPath"], "/etc/weir/analysis-credentials");
    assert_eq!(mounts[2]["mountPath"], "/etc/weir/notification-sinks");
    assert_eq!(pod["volumes"][2]["secret"]["secretName"], "release-sinks");
    let rules = find(&rendered, "ClusterRole", "weir")["rules"].to_string();
    assert!(!rules.contains("secrets"), "{rules}");
    assert!(
        rules.contains(
            r#"{"apiGroups":["external.metrics.k8s.io"],"resources":["*"],"verbs":["get"]}"#
        ),
        "{rules}"
    );
}

#[tokio::test]
async fn every_rendering_is_accepted_by_the_api_server() {
    with_temp_ns(|client, ns| async move {
        install_monitoring_crds(&client).await;
        support::install_crds(&client).await;
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

#[tokio::test]
async fn alerts_and_dashboard_read_the_operators_real_metrics_and_fire_when_they_should() {
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        let mut values = all_features();
        // One replica without election and only this namespace, so the flags can run here.
        values["replicaCount"] = json!(1);
        values["watchNamespaces"] = json!([ns]);
        let rendered = documents(&template(&ns, &ns, &values).await);
        let operator = run_with_the_charts_flags(&client, &ns, &rendered).await;
        let exported = exported_metrics(&operator).await;
        let samples: BTreeSet<&str> = exported
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();

        let rule = find(&rendered, "PrometheusRule", &ns);
        let groups = &rule["spec"]["groups"];
        rules_read_exported_series(groups, &samples, &exported).await;
        alerts_fire_when_they_should(groups, &ns).await;
        dashboard_reads_every_metric_family(&rendered, &ns, &samples);
        operator.stop().await;
    })
    .await;
}

#[tokio::test]
async fn cluster_wide_install_grants_what_a_canary_needs_and_no_secrets() {
    with_temp_ns(|client, ns| install_and_prove(client, ns, false)).await;
}

#[tokio::test]
async fn watch_namespaces_install_grants_only_the_watched_namespaces() {
    with_temp_ns(|client, ns| install_and_prove(client, ns, true)).await;
}
