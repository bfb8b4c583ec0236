//! kube-state-metrics (built from the Go module proxy like the control plane) reads
//! Microservices through the chart's CustomResourceState configuration
//! (`charts/weir/files/kube-state-metrics.yaml`): during a real release its series say the
//! phase, the active slot, the weight, the step and the pods, per Microservice.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use support::helm::{documents, find, template};
use support::http::{fetch, free_port};
use support::release::{DEADLINE, Harness, canary};
use support::{eventually, with_temp_ns};
use tokio::process::{Child, Command};

const V2: &str = "registry.example/app:2";
const CONFIG: &str = "charts/weir/files/kube-state-metrics.yaml";

fn config() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CONFIG);
    let text = std::fs::read_to_string(path).expect("the configuration");
    serde_yaml::from_str(&text).expect("YAML")
}

/// Every series name the configuration gives kube-state-metrics.
pub fn configured_metric_names() -> BTreeSet<String> {
    let config = config();
    let resource = &config["spec"]["resources"][0];
    let prefix = resource["metricNamePrefix"].as_str().expect("a prefix");
    resource["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| format!("{prefix}_{}", m["name"].as_str().expect("a name")))
        .collect()
}

/// kube-state-metrics on a free port, watching only `ns`; stops when dropped.
struct KubeStateMetrics {
    url: String,
    _process: Child,
}

impl KubeStateMetrics {
    fn start(ns: &str) -> KubeStateMetrics {
        let port = free_port();
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join(CONFIG);
        let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG (the test cluster's)");
        let process = Command::new("kube-state-metrics")
            .arg(format!("--kubeconfig={kubeconfig}"))
            .arg("--custom-resource-state-only")
            .arg(format!("--custom-resource-state-config-file={}", config.display()))
            .arg(format!("--namespaces={ns}"))
            .arg("--host=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--telemetry-port={}", free_port()))
            .arg("--telemetry-host=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start kube-state-metrics ({e}): `make cluster-up` builds it into .cluster/bin")
            });
        KubeStateMetrics {
            url: format!("http://127.0.0.1:{port}/metrics"),
            _process: process,
        }
    }

    /// The value of each series of `microservice` whose name starts with the configuration's
    /// prefix, keyed by name and the labels that tell series of one name apart.
    async fn series_of(&self, microservice: &str) -> Option<BTreeMap<String, f64>> {
        let (status, body) = fetch(&self.url).await?;
        (status == 200).then_some(())?;
        let wanted = format!("microservice=\"{microservice}\"");
        let series = body
            .lines()
            .filter(|line| line.starts_with("kube_weir_microservice_") && line.contains(&wanted))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let name = series.split('{').next()?;
                let state = ["phase=", "slot="]
                    .iter()
                    .find_map(|label| series.split(label).nth(1))
                    .and_then(|rest| rest.split('"').nth(1))
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default();
                Some((format!("{name}{state}"), value.parse().ok()?))
            })
            .collect();
        Some(series)
    }
}

#[tokio::test]
async fn kube_state_metrics_tells_where_each_release_stands() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]);
        let h = Harness::start(&client, &ns, "web", json!({"rollout": canary(steps)})).await;
        h.set_image(V2).await;
        h.wait_paused_at(1).await;
        let ksm = KubeStateMetrics::start(&ns);

        let expected: BTreeMap<String, f64> = [
            ("kube_weir_microservice_phase/Paused", 1.0),
            ("kube_weir_microservice_phase/Healthy", 0.0),
            ("kube_weir_microservice_active_slot/blue", 1.0),
            ("kube_weir_microservice_active_slot/green", 0.0),
            ("kube_weir_microservice_release_weight", 20.0),
            ("kube_weir_microservice_release_weight_verified", 1.0),
            ("kube_weir_microservice_release_step_index", 1.0),
            ("kube_weir_microservice_release_step_count", 4.0),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        let seen = eventually(
            DEADLINE,
            "kube-state-metrics to report the paused release",
            || async {
                let series = ksm.series_of("web").await?;
                expected
                    .iter()
                    .all(|(name, value)| series.get(name) == Some(value))
                    .then_some(series)
            },
        )
        .await;
        let names: BTreeSet<String> = seen
            .keys()
            .map(|k| k.split('/').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            names,
            configured_metric_names(),
            "every configured metric has series"
        );
        assert!(
            seen["kube_weir_microservice_ready_replicas"] > 0.0,
            "{seen:#?}"
        );

        h.act("promote-full").await;
        eventually(
            DEADLINE,
            "kube-state-metrics to report the promotion",
            || async {
                let series = ksm.series_of("web").await?;
                let done = series.get("kube_weir_microservice_phase/Healthy") == Some(&1.0)
                    && series.get("kube_weir_microservice_active_slot/green") == Some(&1.0)
                    && series.get("kube_weir_microservice_release_weight") == Some(&0.0)
                    && !series.contains_key("kube_weir_microservice_release_step_index");
                done.then_some(())
            },
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn the_chart_ships_the_configuration_when_asked() {
    let values = json!({"kubeStateMetrics": {"enabled": true}});
    let rendered = documents(&template("weir", "weir-system", &values).await);
    let config_map = find(&rendered, "ConfigMap", "weir-kube-state-metrics");
    let shipped: Value = serde_yaml::from_str(
        config_map["data"]["custom-resource-state.yaml"]
            .as_str()
            .expect("the configuration's text"),
    )
    .expect("YAML");
    assert_eq!(shipped, config());
    let off = documents(&template("weir", "weir-system", &json!({})).await);
    assert!(
        off.iter()
            .all(|d| d["metadata"]["name"] != "weir-kube-state-metrics"),
        "off by default"
    );
}
