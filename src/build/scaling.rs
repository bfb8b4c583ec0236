use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::{labels, object_meta};
use crate::api::Microservice;

/// CPU target when autoscaling names none.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// The number of pods to run: `spec.replicas` (default 1), kept within the autoscaler's
/// bounds when autoscaling is on (the autoscaler writes `spec.replicas` through `/scale`).
pub fn effective_replicas(ms: &Microservice) -> i32 {
    let replicas = ms.spec.replicas;
    match &ms.spec.autoscaling {
        None => replicas.unwrap_or(1),
        Some(a) => {
            let min = a.min_replicas.unwrap_or(1);
            replicas.unwrap_or(min).clamp(min, a.max_replicas.max(min))
        }
    }
}

/// The most pods that can run at once: what decides whether a PDB makes sense.
fn most_replicas(ms: &Microservice) -> i32 {
    match &ms.spec.autoscaling {
        None => ms.spec.replicas.unwrap_or(1),
        Some(a) => a.max_replicas,
    }
}

/// PodDisruptionBudget `<name>` whenever more than one pod can run (with one pod a budget
/// would only block node drains); `maxUnavailable: 1` unless the spec says otherwise.
pub fn pod_disruption_budget(ms: &Microservice) -> Option<PodDisruptionBudget> {
    if most_replicas(ms) <= 1 {
        return None;
    }
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let disruption = ms.spec.disruption.clone().unwrap_or_default();
    let mut spec = json!({"selector": {"matchLabels": labels::service_selector(name)}});
    match (disruption.max_unavailable, disruption.min_available) {
        (_, Some(min)) => spec["minAvailable"] = json!(min),
        (max, None) => spec["maxUnavailable"] = json!(max.unwrap_or(IntOrString::Int(1))),
    }
    let object = json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(ms, name),
        "spec": spec,
    });
    Some(serde_json::from_value(object).expect("the built PDB matches its schema"))
}

/// HorizontalPodAutoscaler `<name>` targeting the Microservice's `/scale` subresource, so
/// Weir, not the autoscaler, decides how the total splits between slots.
pub fn horizontal_pod_autoscaler(ms: &Microservice) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = ms.spec.autoscaling.as_ref()?;
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let utilization = |resource: &str, target: i32| json!({"type": "Resource", "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}}});
    let mut metrics = Vec::new();
    if let Some(cpu) = autoscaling.target_cpu_utilization_percentage {
        metrics.push(utilization("cpu", cpu));
    }
    if let Some(memory) = autoscaling.target_memory_utilization_percentage {
        metrics.push(utilization("memory", memory));
    }
    if metrics.is_empty() {
        metrics.push(utilization("cpu", DEFAULT_CPU_UTILIZATION));
    }
    let object = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(ms, name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "weir.dev/v1alpha1", "kind": "Microservice", "name": name},
            "minReplicas": autoscaling.min_replicas.unwrap_or(1),
            "maxReplicas": autoscaling.max_replicas,
            "metrics": metrics,
        }
    });
    Some(serde_json::from_value(object).expect("the built HPA matches its schema"))
}
