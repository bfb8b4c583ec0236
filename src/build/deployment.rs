use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::{Defaults, labels, object_meta};
use crate::api::{Microservice, Slot, SpreadDomain};

/// Default seconds a rollout may stall before the Microservice turns Degraded.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// Name of a slot's Deployment: `<name>-blue` or `<name>-green`.
pub fn deployment_name(name: &str, slot: Slot) -> String {
    format!("{name}-{}", slot.as_str())
}

/// The Deployment of one slot with `replicas` pods, defaults filled in for isolation and
/// zero downtime: requests and limits, a readiness probe, the restricted security profile,
/// spreading over zones and nodes, and a rolling update that never drops a ready pod.
pub fn deployment(ms: &Microservice, slot: Slot, replicas: i32, defaults: &Defaults) -> Deployment {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let spec = &ms.spec;
    let pod = spec.pod.clone().unwrap_or_default();
    let rollout = spec.rollout.clone().unwrap_or_default();
    let selector = labels::slot_selector(name, slot);

    let mut pod_labels = pod.labels.clone();
    pod_labels.extend(labels::standard_labels(name));
    pod_labels.extend(selector.clone());

    let probes = spec.probes.clone().unwrap_or_default();
    let readiness = probes.readiness.or_else(|| default_readiness(ms));
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "containerPort": p.target_port.unwrap_or(p.port),
                "protocol": p.protocol.map(|p| serde_json::to_value(p).unwrap_or_default()).unwrap_or(json!("TCP")),
            })
        })
        .collect();

    let container_security = pod.container_security_context.clone().map_or_else(
        || {
            json!({
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": true,
                "seccompProfile": {"type": "RuntimeDefault"},
            })
        },
        |c| serde_json::to_value(c).unwrap_or_default(),
    );
    let pod_security = pod.security_context.clone().map_or_else(
        || json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}),
        |c| serde_json::to_value(c).unwrap_or_default(),
    );

    let mut container = json!({
        "name": name,
        "image": spec.image,
        "resources": defaults.resources(spec.resources.as_ref()),
        "securityContext": container_security,
    });
    let fields = [
        ("command", json!(spec.command)),
        ("args", json!(spec.args)),
        ("env", json!(spec.env)),
        ("envFrom", json!(spec.env_from)),
        ("ports", json!(ports)),
        ("volumeMounts", json!(pod.volume_mounts)),
        ("readinessProbe", json!(readiness)),
        ("livenessProbe", json!(probes.liveness)),
        ("startupProbe", json!(probes.startup)),
    ];
    set_present(&mut container, fields);

    let mut pod_spec = json!({
        "containers": [container],
        "securityContext": pod_security,
        "topologySpreadConstraints": spread_constraints(spec.placement.as_ref().and_then(|p| p.spread_across.clone()), &selector),
    });
    let pod_fields = [
        ("serviceAccountName", json!(pod.service_account_name)),
        ("nodeSelector", json!(pod.node_selector)),
        ("tolerations", json!(pod.tolerations)),
        ("volumes", json!(pod.volumes)),
        ("imagePullSecrets", json!(pod.image_pull_secrets)),
    ];
    set_present(&mut pod_spec, pod_fields);

    let mut template_meta = json!({"labels": pod_labels});
    set_present(
        &mut template_meta,
        [("annotations", json!(pod.annotations))],
    );

    let max_surge = rollout
        .max_surge
        .unwrap_or(IntOrString::String("25%".into()));
    let object = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(ms, &deployment_name(name, slot)),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "progressDeadlineSeconds": rollout.progress_deadline_seconds.unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": max_surge}},
            "template": {"metadata": template_meta, "spec": pod_spec},
        }
    });
    serde_json::from_value(object).expect("the built Deployment matches its schema")
}

/// A TCP check on the first port: a pod gets traffic only once it accepts connections.
fn default_readiness(ms: &Microservice) -> Option<Probe> {
    let first = ms.spec.ports.first()?;
    Some(Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(first.target_port.unwrap_or(first.port)),
            host: None,
        }),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    })
}

fn spread_constraints(
    domains: Option<Vec<SpreadDomain>>,
    selector: &std::collections::BTreeMap<String, String>,
) -> Vec<Value> {
    let domains = domains.unwrap_or_else(|| vec![SpreadDomain::Zone, SpreadDomain::Node]);
    domains
        .iter()
        .map(|domain| {
            let key = match domain {
                SpreadDomain::Zone => "topology.kubernetes.io/zone",
                SpreadDomain::Node => "kubernetes.io/hostname",
            };
            json!({
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
            })
        })
        .collect()
}

/// Sets each field whose value is not null, an empty list or an empty map.
fn set_present<const N: usize>(object: &mut Value, fields: [(&str, Value); N]) {
    for (key, value) in fields {
        let empty = match &value {
            Value::Null => true,
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            _ => false,
        };
        if !empty {
            object[key] = value;
        }
    }
}
