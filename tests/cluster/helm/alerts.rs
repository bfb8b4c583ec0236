//! The chart's alerts and dashboard against the metrics a running operator exports.

use std::collections::BTreeSet;

use kube::Client;
use serde_json::{Value, json};

use super::{assert_logs_json, operator_args};
use crate::support;
use crate::support::helm::{OperatorAs, find, scratch_file};
use crate::support::microservice as ms_support;
use crate::support::release::DEADLINE;

/// The metric names a PromQL expression reads (`weir_*` identifiers).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("weir_"))
        .map(str::to_string)
        .collect()
}

/// The values an expression's `phase="..."` matchers ask for.
pub fn phases(expr: &str) -> BTreeSet<String> {
    expr.split("phase=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// `promtool test rules` input: series of this release's job (and, for the Degraded alert, a
/// decoy of another job that must not count), and when each alert must and must not fire.
pub fn alert_tests(rules_file: &str, job: &str, ns: &str) -> Value {
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

/// Every flag the chart can pass is one the operator accepts: it runs with them all (as
/// the test's own user) and logs JSON as told. Returns it after one reconcile, so that
/// every metric family has samples.
pub async fn run_with_the_charts_flags(
    client: &Client,
    ns: &str,
    rendered: &[Value],
) -> OperatorAs {
    let args = operator_args(rendered, ns);
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG is set");
    let env = [("RUST_LOG".to_string(), "info".to_string())];
    let operator = OperatorAs::start(&kubeconfig, &args, &env, &format!("{ns}-metrics")).await;
    assert_logs_json(&operator.log_text());
    let api = ms_support::create(client, ns, &ms_support::microservice("web", json!({}))).await;
    ms_support::wait_ready(&api, "web", 1, DEADLINE).await;
    operator
}

pub async fn exported_metrics(operator: &OperatorAs) -> String {
    let (status, exported) = support::http::get(&operator.metrics_addr, "/metrics")
        .await
        .expect("/metrics answers");
    assert_eq!(status, 200);
    exported
}

/// The rules: valid for Prometheus, reading series the operator exports.
pub async fn rules_read_exported_series(groups: &Value, samples: &BTreeSet<&str>, exported: &str) {
    let exported_phases = phases(exported);
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
}

/// The alerts fire when, and only when, they should (annotations are left to
/// `rules_read_exported_series`: their text is not what is tested here).
pub async fn alerts_fire_when_they_should(groups: &Value, ns: &str) {
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
    let tests = alert_tests(&bare_file, &job, ns);
    let tests_file = scratch_file("alerts", "tests.json", &tests.to_string());
    let (ok, stdout, stderr) =
        support::helm::run("promtool", &["test", "rules", &tests_file]).await;
    assert!(ok, "promtool test rules: {stdout}{stderr}");
}

/// The dashboard: JSON with panels over each of the operator's metric families.
pub fn dashboard_reads_every_metric_family(rendered: &[Value], ns: &str, samples: &BTreeSet<&str>) {
    let dashboard = find(rendered, "ConfigMap", &format!("{ns}-dashboard"));
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

    // The per-Microservice panels read kube-state-metrics' series of the chart's configuration.
    let configured = crate::kube_state_metrics::configured_metric_names();
    let per_microservice: BTreeSet<String> = board["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets").iter())
        .flat_map(|target| {
            let expr = target["expr"].as_str().unwrap_or_default();
            expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("kube_weir_microservice_"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!per_microservice.is_empty(), "no per-Microservice panel");
    for name in &per_microservice {
        assert!(
            configured.contains(name),
            "the dashboard reads {name}, which kube-state-metrics is not configured to export"
        );
    }
}
