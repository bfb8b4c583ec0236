//! Pure status computation: what the Microservice reports, from what the other stages
//! found. Every status field has one owner: the release machine's fields come whole from
//! its `ReleaseFields`, the rest from the `Facts` the report stage gathers, and both are
//! taken apart without `..`, so a field added to either and forgotten here does not compile.

mod assessment;

pub use assessment::{Assessment, of_release};

use crate::controller::cache_form::CachedDeployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ManagedFieldsEntry, Time};
use k8s_openapi::jiff::Timestamp;

use super::problem::Problem;
use crate::api::conditions::{self, reason};
use crate::api::{Microservice, MicroserviceStatus, MigrationStatus, Phase};
use crate::build::{effective_replicas, labels};
use crate::release::ReleaseFields;

/// The words that mark the replicas warning in a status message.
pub const REPLICAS_CONTESTED_TEXT: &str = "spec.replicas is also set by";

/// What the status is computed from besides the Microservice itself.
pub struct Facts<'a> {
    /// The active slot's Deployment.
    pub deployment: Option<&'a CachedDeployment>,
    /// What stopped the apply; it takes over from everything else.
    pub problem: Option<&'a Problem>,
    /// Managers other than the autoscaler that set `spec.replicas` while autoscaling is on.
    pub replicas_contested_by: Vec<String>,
    /// Where a release (or an aborted one) stands; it takes over from the active
    /// Deployment's rollout.
    pub release: Option<Assessment>,
    /// The release machine's fields, as it decided them.
    pub fields: ReleaseFields,
    /// The last `weir.dev/action` value acted on.
    pub handled_action: Option<String>,
    /// What a takeover under way says; a problem or a release speaks first.
    pub takeover: Option<Assessment>,
    /// The takeover as it stands.
    pub migration: Option<MigrationStatus>,
    /// A warning that `rollout.trackConfig` asks for kinds the operator does not track.
    pub untracked_config: Option<String>,
}

/// The status that describes `ms` given `facts`. Condition transition times are kept from
/// `ms.status` when a condition's status did not change.
pub fn compute(ms: &Microservice, facts: Facts, now: Timestamp) -> MicroserviceStatus {
    let Facts {
        deployment,
        problem,
        replicas_contested_by,
        release,
        fields,
        handled_action,
        takeover,
        migration,
        untracked_config,
    } = facts;
    let ReleaseFields {
        active_slot,
        stable_revision,
        candidate_revision,
        aborted_revision,
        release: release_state,
        scale_down_at,
    } = fields;
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let generation = ms.metadata.generation;
    let desired = effective_replicas(ms);
    let mut assessment = match (problem, release, takeover) {
        (Some(problem), _, _) => assessment::of_problem(problem),
        (None, Some(release), _) => release,
        (None, None, Some(takeover)) => takeover,
        (None, None, None) => assessment::of_rollout(ms, deployment, desired),
    };
    if !replicas_contested_by.is_empty() {
        assessment.message.push_str(&format!(
            " Warning: {REPLICAS_CONTESTED_TEXT} {} while autoscaling is on; remove replicas \
             from that manifest so it and the autoscaler do not fight.",
            replicas_contested_by.join(", ")
        ));
    }
    if let Some(warning) = untracked_config {
        assessment.message.push_str(&warning);
    }
    let old_conditions = ms.status.as_ref().map_or(&[][..], |s| &s.conditions[..]);
    let conditions = conditions_for(&assessment, generation, old_conditions, now);
    let pods = deployment
        .and_then(|d| d.status.clone())
        .unwrap_or_default();
    MicroserviceStatus {
        observed_generation: generation,
        phase: Some(assessment.phase),
        message: Some(assessment.message),
        conditions,
        replicas: pods.replicas.unwrap_or(0),
        ready_replicas: pods.ready_replicas.unwrap_or(0),
        updated_replicas: pods.updated_replicas.unwrap_or(0),
        selector: Some(labels::selector_string(&labels::service_selector(name))),
        active_slot: Some(active_slot),
        stable_revision,
        candidate_revision,
        aborted_revision,
        release: release_state,
        scale_down_at,
        handled_action,
        template_patch: crate::build::template_patch_report(ms),
        // The queue is the report's: it follows the old one and this decision's moments.
        notifications: None,
        migration,
    }
}

/// The status of a stored object that does not read as a Microservice.
pub fn unreadable(generation: Option<i64>, message: &str, now: Timestamp) -> MicroserviceStatus {
    let assessment = Assessment::new(Phase::Degraded, reason::INVALID_SPEC, message);
    MicroserviceStatus {
        observed_generation: generation,
        phase: Some(Phase::Degraded),
        message: Some(message.to_string()),
        conditions: conditions_for(&assessment, generation, &[], now),
        ..Default::default()
    }
}

const NOTHING_WRONG: &str = "Nothing is wrong.";
const NOTHING_TO_ROLL_OUT: &str = "Nothing to roll out.";
const STOPPED: &str = "Stopped; the Degraded condition says why.";
const AWAITING_A_CHANGE: &str =
    "Waiting for a change to the spec or the cluster; the Stalled condition says why.";

/// The Ready, Progressing and Degraded conditions for people and Argo CD; Reconciling and
/// Stalled for kstatus, which Flux and cli-utils read: InProgress while Reconciling, Failed
/// when Stalled (with Stalled's message), Current when neither. A condition's transition
/// time is kept from `old` when its status did not change.
fn conditions_for(
    assessment: &Assessment,
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
    let Assessment {
        phase,
        reason,
        message,
        ..
    } = assessment;
    let serving = assessment.serving.as_deref().unwrap_or(message);
    let progress = assessment.progress.as_deref().unwrap_or(message);
    let waiting = assessment.waiting.as_deref().unwrap_or(progress);
    let (ready, progressing, degraded, reconciling, stalled) = match phase {
        Phase::Healthy => (
            (true, reason::AVAILABLE, message.as_str()),
            (false, reason::ROLLED_OUT, NOTHING_TO_ROLL_OUT),
            (false, reason::AS_EXPECTED, NOTHING_WRONG),
            (false, reason::ROLLED_OUT, NOTHING_TO_ROLL_OUT),
            (false, reason::AS_EXPECTED, NOTHING_WRONG),
        ),
        Phase::Progressing | Phase::Paused => (
            (false, reason.as_str(), serving),
            (true, reason.as_str(), progress),
            (false, reason::AS_EXPECTED, NOTHING_WRONG),
            (true, reason.as_str(), waiting),
            (false, reason::AS_EXPECTED, NOTHING_WRONG),
        ),
        Phase::Degraded => (
            (false, reason.as_str(), serving),
            (
                false,
                reason.as_str(),
                assessment.progress.as_deref().unwrap_or(STOPPED),
            ),
            (true, reason.as_str(), message.as_str()),
            (
                false,
                reason.as_str(),
                assessment.waiting.as_deref().unwrap_or(AWAITING_A_CHANGE),
            ),
            (true, reason.as_str(), message.as_str()),
        ),
    };
    [
        (conditions::READY, ready),
        (conditions::PROGRESSING, progressing),
        (conditions::DEGRADED, degraded),
        (conditions::RECONCILING, reconciling),
        (conditions::STALLED, stalled),
    ]
    .into_iter()
    .map(|(type_, (status, reason, message))| condition(type_, status, reason, message))
    .collect()
}

/// The reason of the Ready condition.
pub fn ready_reason(status: &MicroserviceStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::READY)
        .map(|c| c.reason.as_str())
}

/// True when `new` differs from `old` only in the counts of pods (replicas, updated, ready)
/// and in the messages that quote them: no condition, phase, generation or release moved.
pub fn counts_only(old: &MicroserviceStatus, new: &MicroserviceStatus) -> bool {
    if old.conditions.len() != new.conditions.len() {
        return false;
    }
    let mut same = new.clone();
    same.replicas = old.replicas;
    same.ready_replicas = old.ready_replicas;
    same.updated_replicas = old.updated_replicas;
    same.message.clone_from(&old.message);
    for (condition, before) in same.conditions.iter_mut().zip(&old.conditions) {
        condition.message.clone_from(&before.message);
    }
    same == *old
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

    fn checkout() -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "checkout", "namespace": "shop", "generation": 2},
            "spec": {"image": "registry.example/checkout:1.5.0", "replicas": 3}
        }))
        .unwrap()
    }

    fn facts(release: Option<Assessment>, problem: Option<&Problem>) -> Facts<'_> {
        Facts {
            deployment: None,
            problem,
            replicas_contested_by: vec![],
            release,
            fields: ReleaseFields::default(),
            handled_action: None,
            takeover: None,
            migration: None,
            untracked_config: None,
        }
    }

    fn message_of<'a>(status: &'a MicroserviceStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.as_str(), c.message.as_str())
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn each_condition_of_a_release_tells_its_own_part() {
        let paused = Assessment {
            phase: Phase::Paused,
            reason: reason::PAUSED.into(),
            message: "Releasing x: step 4 of 4, waiting; 50% of traffic.".into(),
            serving: Some("50% of traffic.".into()),
            progress: Some("Releasing x: step 4 of 4.".into()),
            waiting: Some("Waiting.".into()),
        };
        let status = compute(&checkout(), facts(Some(paused), None), now());
        assert_eq!(status.phase, Some(Phase::Paused));
        assert_eq!(
            status.message.as_deref(),
            Some("Releasing x: step 4 of 4, waiting; 50% of traffic.")
        );
        assert_eq!(
            message_of(&status, conditions::READY),
            ("False", "50% of traffic.")
        );
        assert_eq!(
            message_of(&status, conditions::PROGRESSING),
            ("True", "Releasing x: step 4 of 4.")
        );
        assert_eq!(
            message_of(&status, conditions::RECONCILING),
            ("True", "Waiting.")
        );
        assert_eq!(
            message_of(&status, conditions::STALLED),
            ("False", NOTHING_WRONG)
        );
        assert_eq!(
            message_of(&status, conditions::DEGRADED),
            ("False", NOTHING_WRONG)
        );
    }

    #[test]
    fn degraded_and_stalled_tell_the_whole_story_as_kstatus_and_argo_read_it() {
        let problem = Problem::NameConflict {
            kind: "Service",
            name: "checkout".into(),
        };
        let mut facts = facts(None, Some(&problem));
        facts.replicas_contested_by = vec!["kustomize".into()];
        let status = compute(&checkout(), facts, now());
        let message = status.message.clone().unwrap();
        assert!(message.starts_with(&problem.message()), "{message}");
        assert!(message.contains(REPLICAS_CONTESTED_TEXT), "{message}");
        assert_eq!(
            message_of(&status, conditions::STALLED),
            ("True", message.as_str())
        );
        assert_eq!(
            message_of(&status, conditions::DEGRADED),
            ("True", message.as_str())
        );
        assert_eq!(
            message_of(&status, conditions::READY),
            ("False", message.as_str())
        );
        assert_eq!(
            message_of(&status, conditions::PROGRESSING),
            ("False", STOPPED)
        );
        assert_eq!(
            message_of(&status, conditions::RECONCILING),
            ("False", AWAITING_A_CHANGE)
        );
        let reasons: Vec<_> = status
            .conditions
            .iter()
            .map(|c| c.reason.as_str())
            .collect();
        assert_eq!(reasons, ["NameConflict"; 5]);
    }

    #[test]
    fn the_release_fields_and_the_handled_action_are_written_as_decided() {
        let fields = ReleaseFields {
            active_slot: crate::api::Slot::Green,
            stable_revision: Some("r1".into()),
            candidate_revision: Some("r2".into()),
            aborted_revision: Some("r0".into()),
            release: None,
            scale_down_at: Some(Time(now())),
        };
        let mut facts = facts(None, None);
        facts.fields = fields.clone();
        facts.handled_action = Some("promote@1".into());
        let status = compute(&checkout(), facts, now());
        let mut expected = MicroserviceStatus::default();
        fields.write_into(&mut expected);
        assert_eq!(
            (
                status.active_slot,
                &status.stable_revision,
                &status.candidate_revision,
                &status.aborted_revision,
                &status.scale_down_at
            ),
            (
                expected.active_slot,
                &expected.stable_revision,
                &expected.candidate_revision,
                &expected.aborted_revision,
                &expected.scale_down_at
            )
        );
        assert_eq!(status.handled_action.as_deref(), Some("promote@1"));
        assert_eq!(
            status.selector.as_deref(),
            Some("app.kubernetes.io/instance=checkout")
        );
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let creating = compute(&checkout(), facts(None, None), now());
        assert_eq!(creating.phase, Some(Phase::Progressing));
        let mut ms = checkout();
        ms.status = Some(creating.clone());
        let later: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let problem = Problem::GatewayApiMissing;
        let degraded = compute(&ms, facts(None, Some(&problem)), later);
        let time = |status: &MicroserviceStatus, type_: &str| {
            let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
            c.last_transition_time.0
        };
        assert_eq!(
            time(&degraded, conditions::READY),
            now(),
            "False before and after"
        );
        assert_eq!(
            time(&degraded, conditions::DEGRADED),
            later,
            "False, now True"
        );
    }

    #[test]
    fn pods_coming_up_change_counts_only_until_the_service_is_ready() {
        let deployment = |ready: i32| -> CachedDeployment {
            serde_json::from_value(json!({
                "metadata": {"name": "checkout-blue", "namespace": "shop", "generation": 1},
                "spec": {"replicas": 3},
                "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                           "readyReplicas": ready, "availableReplicas": ready,
                           "conditions": [{"type": "Available",
                                           "status": if ready == 3 { "True" } else { "False" }}]}
            }))
            .unwrap()
        };
        let mut ms = checkout();
        let mut status_at = |ready: i32| {
            let d = deployment(ready);
            let status = compute(
                &ms,
                Facts {
                    deployment: Some(&d),
                    ..facts(None, None)
                },
                now(),
            );
            ms.status = Some(status.clone());
            status
        };
        let (none, one, two, all) = (status_at(0), status_at(1), status_at(2), status_at(3));
        assert_ne!(none, one, "the counts moved");
        assert!(counts_only(&none, &one));
        assert!(counts_only(&one, &two));
        assert!(!counts_only(&two, &all), "Ready is a transition");
        assert!(
            !counts_only(&MicroserviceStatus::default(), &none),
            "the first status"
        );
        let mut released = two.clone();
        released.stable_revision = Some("other".into());
        assert!(!counts_only(&one, &released), "more than counts");
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
