//! Pure status computation: what the Microservice reports, from what the cluster shows.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ManagedFieldsEntry, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::conditions::{self, reason};
use crate::api::{Microservice, MicroserviceStatus, Phase, Slot};
use crate::build::{effective_replicas, labels};

/// The words that mark the replicas warning in a status message.
pub const REPLICAS_CONTESTED_TEXT: &str = "spec.replicas is also set by";

/// What stops a Microservice from being served as its spec asks, found while applying.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A child's name is taken by an object Weir does not own.
    NameConflict { kind: &'static str, name: String },
    /// The API server refused a child as built from the spec.
    Refused { kind: &'static str, message: String },
    /// Something the spec needs is not installed in the cluster.
    Missing {
        reason: &'static str,
        message: String,
    },
}

/// Everything `compute` reads besides the Microservice itself.
pub struct Observed<'a> {
    pub deployment: Option<&'a Deployment>,
    pub active: Slot,
    pub problem: Option<Problem>,
    /// Managers other than the autoscaler that set `spec.replicas` while autoscaling is on.
    pub replicas_contested_by: Vec<String>,
    /// Phase, reason and message of a release (or of an aborted one), which take over from
    /// the active Deployment's rollout.
    pub release: Option<(Phase, String, String)>,
}

/// The status that describes `ms` given what was observed. Condition transition times are
/// kept from `ms.status` when a condition's status did not change.
pub fn compute(ms: &Microservice, observed: &Observed, now: Timestamp) -> MicroserviceStatus {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let generation = ms.metadata.generation;
    let desired = effective_replicas(ms);
    let deployment_status = observed
        .deployment
        .and_then(|d| d.status.clone())
        .unwrap_or_default();
    let (phase, reason, mut message) = assess(ms, observed, desired);

    if !observed.replicas_contested_by.is_empty() {
        message.push_str(&format!(
            " Warning: {REPLICAS_CONTESTED_TEXT} {} while autoscaling is on; remove replicas \
             from that manifest so it and the autoscaler do not fight.",
            observed.replicas_contested_by.join(", ")
        ));
    }

    let old = ms.status.clone().unwrap_or_default();
    let conditions = conditions_for(phase, &reason, &message, generation, &old.conditions, now);

    MicroserviceStatus {
        observed_generation: generation,
        phase: Some(phase),
        message: Some(message),
        conditions,
        replicas: deployment_status.replicas.unwrap_or(0),
        ready_replicas: deployment_status.ready_replicas.unwrap_or(0),
        updated_replicas: deployment_status.updated_replicas.unwrap_or(0),
        selector: Some(labels::selector_string(&labels::service_selector(name))),
        active_slot: Some(observed.active),
        ..Default::default()
    }
}

/// The status of a stored object that does not read as a Microservice.
pub fn unreadable(generation: Option<i64>, message: &str, now: Timestamp) -> MicroserviceStatus {
    MicroserviceStatus {
        observed_generation: generation,
        phase: Some(Phase::Degraded),
        message: Some(message.to_string()),
        conditions: conditions_for(
            Phase::Degraded,
            reason::INVALID_SPEC,
            message,
            generation,
            &[],
            now,
        ),
        ..Default::default()
    }
}

/// The Ready, Progressing and Degraded conditions for a phase. A condition's transition time
/// is kept from `old` when its status did not change.
fn conditions_for(
    phase: Phase,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    old: &[Condition],
    now: Timestamp,
) -> Vec<Condition> {
    let condition = |type_: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" };
        let last_transition_time = old
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time,
        }
    };
    const NOTHING_WRONG: &str = "Nothing is wrong.";
    // Ready, Progressing and Degraded for people and Argo CD; Reconciling and Stalled for
    // kstatus, which Flux and cli-utils read: InProgress while Reconciling, Failed when
    // Stalled, Current when neither.
    match phase {
        Phase::Healthy => vec![
            condition(conditions::READY, true, reason::AVAILABLE, message),
            condition(
                conditions::PROGRESSING,
                false,
                reason::ROLLED_OUT,
                "Nothing to roll out.",
            ),
            condition(
                conditions::DEGRADED,
                false,
                reason::AS_EXPECTED,
                NOTHING_WRONG,
            ),
            condition(
                conditions::RECONCILING,
                false,
                reason::ROLLED_OUT,
                "Nothing to roll out.",
            ),
            condition(
                conditions::STALLED,
                false,
                reason::AS_EXPECTED,
                NOTHING_WRONG,
            ),
        ],
        Phase::Progressing | Phase::Paused => vec![
            condition(conditions::READY, false, reason, message),
            condition(conditions::PROGRESSING, true, reason, message),
            condition(
                conditions::DEGRADED,
                false,
                reason::AS_EXPECTED,
                NOTHING_WRONG,
            ),
            condition(conditions::RECONCILING, true, reason, message),
            condition(
                conditions::STALLED,
                false,
                reason::AS_EXPECTED,
                NOTHING_WRONG,
            ),
        ],
        Phase::Degraded => vec![
            condition(conditions::READY, false, reason, message),
            condition(conditions::PROGRESSING, false, reason, message),
            condition(conditions::DEGRADED, true, reason, message),
            condition(conditions::RECONCILING, false, reason, message),
            condition(conditions::STALLED, true, reason, message),
        ],
    }
}

/// Phase, reason and a sentence for a person.
fn assess(ms: &Microservice, observed: &Observed, desired: i32) -> (Phase, String, String) {
    match &observed.problem {
        Some(Problem::NameConflict { kind, name }) => {
            return (
                Phase::Degraded,
                reason::NAME_CONFLICT.into(),
                format!(
                    "{kind} {name} already exists and is not owned by this Microservice; \
                     Weir will not adopt or change it. Rename or delete it."
                ),
            );
        }
        Some(Problem::Refused { kind, message }) => {
            return (
                Phase::Degraded,
                reason::APPLY_FAILED.into(),
                format!("The API server refused the {kind} built from this spec: {message}"),
            );
        }
        Some(Problem::Missing { reason, message }) => {
            return (Phase::Degraded, reason.to_string(), message.clone());
        }
        None => {}
    }
    if let Some((phase, reason, message)) = &observed.release {
        return (*phase, reason.clone(), message.clone());
    }
    let Some(deployment) = observed.deployment else {
        return (
            Phase::Progressing,
            reason::ROLLING_OUT.into(),
            "Creating the Deployment.".into(),
        );
    };
    let status = deployment.status.clone().unwrap_or_default();
    let stalled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(stalled) = stalled {
        let deadline = deployment
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or_default();
        return (
            Phase::Degraded,
            reason::PROGRESS_DEADLINE_EXCEEDED.into(),
            format!(
                "The rollout of {} made no progress for {deadline}s: {ready} of {desired} pods ready, \
                 {updated} updated. {}",
                ms.spec.image,
                stalled.message.as_deref().unwrap_or_default()
            ),
        );
    }
    let seen = status.observed_generation >= deployment.metadata.generation;
    if !seen {
        return (
            Phase::Progressing,
            reason::WAITING_FOR_CONTROLLER.into(),
            "Waiting for the Deployment controller to see the new spec.".into(),
        );
    }
    if updated < desired || ready < desired || available < desired || replicas > desired {
        return (
            Phase::Progressing,
            reason::ROLLING_OUT.into(),
            format!(
                "Rolling out {}: {updated} of {desired} pods updated, {ready} ready.",
                ms.spec.image
            ),
        );
    }
    (
        Phase::Healthy,
        reason::AVAILABLE.into(),
        format!(
            "{ready} of {desired} pods ready, running {}.",
            ms.spec.image
        ),
    )
}

/// The reason of the Ready condition.
pub fn ready_reason(status: &MicroserviceStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::READY)
        .map(|c| c.reason.as_str())
}

/// Managers that set `spec.replicas` other than through `/scale` (where autoscalers write)
/// and other than Weir: with autoscaling on, they would fight the autoscaler.
pub fn replicas_contested_by(ms: &Microservice) -> Vec<String> {
    if ms.spec.autoscaling.is_none() || ms.spec.replicas.is_none() {
        return Vec::new();
    }
    let entries: &[ManagedFieldsEntry] = ms.metadata.managed_fields.as_deref().unwrap_or_default();
    let mut managers: Vec<String> = entries
        .iter()
        .filter(|e| e.subresource.as_deref().unwrap_or_default().is_empty())
        .filter(|e| {
            e.fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:spec"))
                .and_then(|spec| spec.get("f:replicas"))
                .is_some()
        })
        .filter_map(|e| e.manager.clone())
        .filter(|m| m != labels::FIELD_MANAGER)
        .collect();
    managers.sort();
    managers.dedup();
    managers
}

/// Drops from a cached Microservice what Weir never reads, since the cache is most of the
/// operator's memory: kubectl's last-applied copy, and every managedFields entry except
/// those that set `spec.replicas` while autoscaling is on (all `replicas_contested_by` needs).
pub fn slim_for_cache(
    metadata: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    autoscaling: bool,
) {
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    let Some(entries) = metadata.managed_fields.as_mut() else {
        return;
    };
    if !autoscaling {
        entries.clear();
        return;
    }
    entries.retain(|e| {
        e.fields_v1
            .as_ref()
            .and_then(|f| f.0.get("f:spec"))
            .and_then(|spec| spec.get("f:replicas"))
            .is_some()
    });
    for entry in entries.iter_mut() {
        entry.fields_v1 = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
            serde_json::json!({"f:spec": {"f:replicas": {}}}),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ObjectMeta};
    use serde_json::json;

    fn entry(
        manager: &str,
        subresource: Option<&str>,
        fields: serde_json::Value,
    ) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            subresource: subresource.map(Into::into),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    fn autoscaled(entries: Vec<ManagedFieldsEntry>) -> Microservice {
        let mut ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice", "metadata": {"name": "a"},
            "spec": {"image": "x:1", "replicas": 3, "autoscaling": {"maxReplicas": 5}}
        }))
        .unwrap();
        ms.metadata.managed_fields = Some(entries);
        ms
    }

    #[test]
    fn only_managers_setting_replicas_outside_scale_contest_the_autoscaler() {
        let ms = autoscaled(vec![
            entry(
                "kustomize-controller",
                None,
                json!({"f:spec": {"f:replicas": {}, "f:image": {}}}),
            ),
            entry(
                "kube-controller-manager",
                Some("scale"),
                json!({"f:spec": {"f:replicas": {}}}),
            ),
            entry("weir", None, json!({"f:spec": {"f:replicas": {}}})),
            entry("kubectl-edit", None, json!({"f:spec": {"f:image": {}}})),
        ]);
        assert_eq!(replicas_contested_by(&ms), ["kustomize-controller"]);
    }

    #[test]
    fn slimming_keeps_exactly_what_contest_detection_reads() {
        let mut ms = autoscaled(vec![
            entry(
                "kustomize-controller",
                None,
                json!({"f:spec": {"f:replicas": {}, "f:image": {}}}),
            ),
            entry("kubectl-edit", None, json!({"f:spec": {"f:image": {}}})),
        ]);
        let before = replicas_contested_by(&ms);
        let mut metadata = ObjectMeta {
            managed_fields: ms.metadata.managed_fields.clone(),
            ..Default::default()
        };
        slim_for_cache(&mut metadata, true);
        assert_eq!(metadata.managed_fields.as_ref().map(Vec::len), Some(1));
        ms.metadata.managed_fields = metadata.managed_fields;
        assert_eq!(replicas_contested_by(&ms), before);

        let mut plain = ObjectMeta {
            managed_fields: ms.metadata.managed_fields.clone(),
            ..Default::default()
        };
        slim_for_cache(&mut plain, false);
        assert_eq!(plain.managed_fields, Some(vec![]));
    }
}
