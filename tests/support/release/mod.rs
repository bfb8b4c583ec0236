//! Release tests: a Microservice with its operator and fake gateway (`Harness`; other
//! Microservices of the namespace join it as `Member`s, served by the same operator), waits
//! on release status, manual actions, recorders of how objects changed over time, when
//! traffic was back and a candidate scaled down, pods made ready late, and a webhook the
//! analysis calls.
//!
//! Recorders order what they saw by resourceVersion: every object of this test cluster is
//! stored in one etcd, whose revisions order all writes, so "the route went back to 0 before
//! the Deployment was scaled down" is a comparison of two resourceVersions, free of the
//! order in which two watch streams happen to deliver.

mod harness;
mod member;
mod order;
mod pods;
mod recorder;
mod views;
mod wait;
mod webhook;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use weir::api::{Microservice, Phase, Release};

pub use harness::Harness;
pub use member::Member;
pub use order::{scaled_down, traffic_back};
pub use pods::LateReadiness;
pub use recorder::{Entry, Recorder};
pub use views::{PodCount, SlotView, StatusView, record_status};
pub use wait::{wait_ms, wait_seen};
pub use webhook::Webhook;

/// How long one step of a release test may take: pods start, the operator reconciles, the
/// fake gateway answers.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// The annotation that carries a manual action.
pub const ACTION: &str = "weir.dev/action";
/// The field manager that plays a GitOps tool (Flux, Argo CD).
pub const GITOPS: &str = "gitops";
/// Seconds the old slot keeps its pods after a promotion in these tests.
pub const SCALE_DOWN_DELAY: i32 = 3;

/// `rollout.traffic` through two parents (a Gateway, and a listener of another), so a step
/// counts only once both report the route accepted.
pub fn gateway_traffic() -> Value {
    json!({"gatewayAPI": {"parentRefs": [
        {"name": "public", "namespace": "gateways"},
        {"name": "internal", "namespace": "gateways", "sectionName": "http"}
    ]}})
}

/// `rollout` for a canary with `steps` through the Gateway API.
pub fn canary(steps: Value) -> Value {
    json!({
        "strategy": "Canary",
        "traffic": gateway_traffic(),
        "canary": {"steps": steps, "scaleDownDelaySeconds": SCALE_DOWN_DELAY}
    })
}

/// `rollout` for a canary with `steps` and no router: the ratio of ready pods is the weight.
pub fn canary_by_replicas(steps: Value) -> Value {
    json!({
        "strategy": "Canary",
        "canary": {"steps": steps, "scaleDownDelaySeconds": SCALE_DOWN_DELAY}
    })
}

/// `rollout` for a blue/green release through the Gateway API; `settings` go into
/// `blueGreen` beside the scale-down delay.
pub fn blue_green(settings: Value) -> Value {
    let mut blue_green = json!({"scaleDownDelaySeconds": SCALE_DOWN_DELAY});
    if let (Some(into), Some(from)) = (blue_green.as_object_mut(), settings.as_object()) {
        into.extend(from.clone());
    }
    json!({"strategy": "BlueGreen", "traffic": gateway_traffic(), "blueGreen": blue_green})
}

/// The resourceVersion of an object as a number (0 when it has none).
pub fn resource_version<K: Resource>(object: &K) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_default()
}

/// The release in `ms`'s status; panics when none runs.
pub fn release(ms: &Microservice) -> &Release {
    ms.status
        .as_ref()
        .and_then(|s| s.release.as_ref())
        .unwrap_or_else(|| panic!("no release in {}", describe(ms)))
}

pub fn phase(ms: &Microservice) -> Option<Phase> {
    ms.status.as_ref().and_then(|s| s.phase)
}

pub fn condition<'a>(ms: &'a Microservice, type_: &str) -> Option<&'a Condition> {
    ms.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The selector of a Service (empty when it has none).
pub fn selector(service: Option<&Service>) -> std::collections::BTreeMap<String, String> {
    service
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// Status and the action annotation, for failure messages.
pub fn describe(ms: &Microservice) -> String {
    let status = serde_json::to_string_pretty(&ms.status).unwrap_or_default();
    let action = ms.annotations().get(ACTION).cloned();
    format!(
        "generation {:?}, action annotation {action:?}, status {status}",
        ms.metadata.generation
    )
}

/// Asks for a manual action through the `weir.dev/action` annotation, with a nonce so a
/// repeat of the same verb is a new request. Returns the value set.
pub async fn act(api: &Api<Microservice>, name: &str, action: &str) -> String {
    let value = format!("{action}@{}", super::unique_name("n"));
    let patch = json!({"metadata": {"annotations": {ACTION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("annotate {name} with {ACTION}={value}: {e}"));
    value
}
