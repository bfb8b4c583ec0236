//! Pure builders: from a Microservice to the objects Weir wants on the cluster. Nothing here
//! talks to the API server, so everything here is tested without one.

pub mod config;
mod defaults;
mod deployment;
#[cfg(test)]
mod golden;
pub mod grpc_route;
pub mod labels;
#[cfg(test)]
mod properties;
mod scaling;
mod service;
pub mod template_patch;
#[cfg(test)]
mod tests;
pub mod traffic;

pub use defaults::Defaults;
pub use deployment::{DEFAULT_PROGRESS_DEADLINE_SECONDS, deployment, deployment_name};
pub use scaling::{effective_replicas, horizontal_pod_autoscaler, pod_disruption_budget};
pub use service::service;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::api::{Microservice, Slot};

/// Annotation on a slot's Deployment naming the revision its pod template carries.
pub const REVISION_ANNOTATION: &str = "weir.dev/revision";

/// The revision the spec asks for: a hash of the pod template, the same whichever slot
/// runs it, so a change anywhere in the pod (image, env, resources, ...) is a new revision.
pub fn revision(ms: &Microservice, defaults: &Defaults) -> String {
    let built = deployment(ms, Slot::Blue, 0, defaults);
    let template = serde_json::to_value(built.spec.map(|s| s.template)).unwrap_or_default();
    format!(
        "{:010x}",
        fnv1a(template.to_string().as_bytes()) & 0xff_ffff_ffff
    )
}

/// What `pod.templatePatch` does, for `status.templatePatch`: the fields it sets, or why
/// it cannot be applied. None without a patch.
pub fn template_patch_report(ms: &Microservice) -> Option<String> {
    let patch = ms.spec.pod.as_ref()?.template_patch.as_ref()?;
    let template = k8s_openapi::api::core::v1::PodTemplateSpec {
        metadata: Some(ObjectMeta::default()),
        spec: Some(Default::default()),
    };
    Some(match template_patch::patched(&template, patch) {
        Ok(_) => {
            let fields = template_patch::touched(patch);
            const SHOWN: usize = 10;
            let more = fields.len().saturating_sub(SHOWN);
            let mut shown = fields
                .into_iter()
                .take(SHOWN)
                .collect::<Vec<_>>()
                .join(", ");
            if more > 0 {
                shown.push_str(&format!(" and {more} more"));
            }
            format!("Applied to the pod template: {shown}.")
        }
        Err(why) => format!("Not applied: {why}."),
    })
}

/// The Deployment of `slot` running the spec's revision with `replicas` pods, labelled
/// with that revision.
pub fn slot_deployment(
    ms: &Microservice,
    slot: Slot,
    replicas: i32,
    defaults: &Defaults,
) -> Deployment {
    let mut built = deployment(ms, slot, replicas, defaults);
    built
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(REVISION_ANNOTATION.to_string(), revision(ms, defaults));
    built
}

/// FNV-1a: a hash that stays the same across Rust releases, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100000001b3)
    })
}

/// Metadata every child carries: its name, the standard labels, and a controller owner
/// reference to the Microservice so garbage collection removes it with its owner.
fn object_meta(ms: &Microservice, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: ms.metadata.namespace.clone(),
        labels: Some(labels::standard_labels(
            ms.metadata.name.as_deref().unwrap_or_default(),
        )),
        owner_references: Some(ms.controller_owner_ref(&()).into_iter().collect()),
        ..Default::default()
    }
}

/// `value` unless it is empty (a list, a map, an object with nothing set): an empty value
/// is left out of what Weir applies rather than sent as `[]` or `{}`.
fn non_empty<T: Default + PartialEq>(value: T) -> Option<T> {
    (value != T::default()).then_some(value)
}
