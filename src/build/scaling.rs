use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

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
    let (max_unavailable, min_available) = match disruption.min_available {
        Some(min) => (None, Some(min)),
        None => (
            Some(disruption.max_unavailable.unwrap_or(IntOrString::Int(1))),
            None,
        ),
    };
    Some(PodDisruptionBudget {
        metadata: object_meta(ms, name),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(labels::service_selector(name)),
                ..Default::default()
            }),
            max_unavailable,
            min_available,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// HorizontalPodAutoscaler `<name>` targeting the Microservice's `/scale` subresource, so
/// Weir, not the autoscaler, decides how the total splits between slots.
pub fn horizontal_pod_autoscaler(ms: &Microservice) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = ms.spec.autoscaling.as_ref()?;
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let targets = [
        ("cpu", autoscaling.target_cpu_utilization_percentage),
        ("memory", autoscaling.target_memory_utilization_percentage),
    ];
    let mut metrics: Vec<MetricSpec> = targets
        .into_iter()
        .filter_map(|(resource, target)| Some(utilization(resource, target?)))
        .collect();
    if metrics.is_empty() {
        metrics.push(utilization("cpu", DEFAULT_CPU_UTILIZATION));
    }
    Some(HorizontalPodAutoscaler {
        metadata: object_meta(ms, name),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(Microservice::api_version(&()).into_owned()),
                kind: Microservice::kind(&()).into_owned(),
                name: name.to_string(),
            },
            min_replicas: Some(autoscaling.min_replicas.unwrap_or(1)),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(metrics),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// A target of average use of `resource`, in percent of the pods' requests.
fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}
