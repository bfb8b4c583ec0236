//! Report: tells what the reconcile did and where the Microservice stands. Events for the
//! children created and deleted and for the release's moments; the status, written only
//! when it changed (a change of pod counts alone, or a first status that only waits for the
//! Deployment controller, held for up to a second to go out with the next transition:
//! own_writes.rs) and remembered until the cache has it; the manual action
//! cleared once recorded; and when to look again.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::apply::Applied;
use super::context::{CACHES_READY_WAIT, Context};
use super::decide::Plan;
use super::error::Cause;
use super::events::{
    announce, event, publish, publish_about, publish_notes, publish_transition_events,
};
use super::observe::{Early, Observation, Unreadable};
use super::problem::Problem;
use super::status::{self, Facts};
use crate::api::{Microservice, MicroserviceStatus, NotificationsStatus, conditions::reason};
use crate::build::labels::FIELD_MANAGER;
use crate::notify::{queue, send};
use crate::release::{ACTION_ANNOTATION, Decision};
use crate::takeover;

/// How soon a Microservice blocked by a name conflict looks again.
const CONFLICT_RECHECK: Duration = Duration::from_secs(5);

/// Reports on one reconcile and says when to look again.
pub async fn report(
    observation: &Observation,
    plan: &Plan,
    applied: &Applied,
    ctx: &Context,
) -> Result<Action, Cause> {
    let ms = &observation.ms;
    announce(ctx, ms, applied).await;
    publish_notes(ctx, ms, &plan.decision.notes).await;
    let old = observation.last_status();
    let takeover = plan.takeover.as_ref();
    let mut new = next_status(observation, &plan.decision, takeover, applied);
    let mut held = None;
    if worth_writing(&old, &new, applied) {
        let wait = may_wait(&old, &new);
        held = ctx.own_writes.hold(&observation.uid, wait, Instant::now());
        if held.is_none() {
            publish_transition_events(ms, &old, &new, ctx).await;
            record_status(observation, &new, ctx).await?;
        }
    }
    if observation.pending_action.is_some() {
        clear_action(&ctx.client, &observation.namespace, &observation.name).await?;
    }
    if let Some(notified) = notify_first(observation, &new, ctx).await {
        new.notifications = notified;
        record_status(observation, &new, ctx).await?;
    }
    let next = requeue_after(&plan.decision, applied, ctx.resync);
    let next = held.map_or(next, |held| next.min(held));
    let notifications = new.notifications.as_ref();
    let next = match queue::next_due(notifications, Timestamp::now()) {
        Some(due) => next.min(due),
        None => next,
    };
    Ok(Action::requeue(next))
}

/// Writes `status` and remembers it until the cache has it.
async fn record_status(
    observation: &Observation,
    status: &MicroserviceStatus,
    ctx: &Context,
) -> Result<(), Cause> {
    let written = write_status(
        &ctx.client,
        &observation.namespace,
        &observation.name,
        status,
    )
    .await?;
    if let Some(version) = written.resource_version() {
        ctx.own_writes
            .record(&observation.uid, &version, status.clone());
    }
    Ok(())
}

/// Sends the first notification of the queue in `status` when it is due; the queue after
/// it (delivered, or failed and backed off), to be written before any other is sent.
async fn notify_first(
    observation: &Observation,
    status: &MicroserviceStatus,
    ctx: &Context,
) -> Option<Option<NotificationsStatus>> {
    let queue = status.notifications.as_ref()?;
    let first = queue::due(Some(queue), Timestamp::now())?.clone();
    let ms = &observation.ms;
    let subject = send::Subject {
        namespace: &observation.namespace,
        name: &observation.name,
    };
    let warn = |reason: &str, note: String| {
        let warning = event(EventType::Warning, reason, "Notify", note);
        async move { publish(ctx, ms, warning).await }
    };
    let notifier = &ctx.notifier;
    let outcome = match notifier
        .sinks
        .permitted(&first.sink, &observation.namespace)
    {
        Err(why) => {
            let note = format!("{} not sent: {why}", first.moment.as_str());
            warn(reason::NOTIFICATION_REFUSED, note).await;
            return Some(queue::non_empty(queue::dropped(queue, &first.id)));
        }
        Ok(sink) => send::deliver(&notifier.client, sink, &subject, &first).await,
    };
    let after = match outcome {
        Ok(()) => {
            tracing::info!(id = %first.id, sink = %first.sink, "notification delivered");
            queue::delivered(queue, &first.id)
        }
        Err(why) => {
            tracing::warn!(id = %first.id, sink = %first.sink, %why, "notification not delivered");
            let (after, given_up) = queue::failed(queue, &first.id, &why, Timestamp::now());
            if given_up {
                let note = format!(
                    "{} to sink {} given up after {} tries: {why}",
                    first.moment.as_str(),
                    first.sink,
                    queue::MAX_ATTEMPTS
                );
                warn(reason::NOTIFICATION_FAILED, note).await;
            }
            after
        }
    };
    Some(queue::non_empty(after))
}

/// The status after this reconcile, the decision's moments queued for notification.
pub fn next_status(
    observation: &Observation,
    decision: &Decision,
    takeover: Option<&takeover::Step>,
    applied: &Applied,
) -> MicroserviceStatus {
    let ms = &observation.ms;
    let old = observation.last_status();
    let facts = Facts {
        deployment: applied.active_deployment.as_ref(),
        problem: applied.problem.as_ref(),
        replicas_contested_by: status::replicas_contested_by(ms),
        release: status::of_release(ms, decision, &observation.revision, &old),
        fields: decision.fields.clone(),
        handled_action: handled_action(observation, &old),
        takeover: takeover.and_then(takeover_assessment),
        migration: migration(observation, takeover),
        untracked_config: untracked_warning(observation),
    };
    let mut new = status::compute(ms, facts, observation.now);
    let moments = queue::moments(decision, &old, &new);
    new.notifications = queue::enqueue(
        old.notifications.clone(),
        ms,
        &observation.revision,
        &moments,
        observation.now,
    );
    new
}

/// What `rollout.trackConfig` asks for that the operator does not allow, said in the
/// status message: those objects reach both slots as they would without tracking.
fn untracked_warning(observation: &Observation) -> Option<String> {
    let refused = &observation.config.refused;
    if refused.is_empty() {
        return None;
    }
    let kinds: Vec<_> = refused
        .iter()
        .map(|k| match k {
            crate::build::config::ConfigKind::ConfigMap => "ConfigMaps (--track-configmaps)",
            crate::build::config::ConfigKind::Secret => "Secrets (--track-secrets)",
        })
        .collect();
    Some(format!(
        " Warning: rollout.trackConfig asks to track {}, which the operator does not: an edit \
         reaches every pod without a release.",
        kinds.join(" and ")
    ))
}

/// The takeover as it stands: this reconcile's step, else as recorded while the spec still
/// asks for it.
fn migration(
    observation: &Observation,
    takeover: Option<&takeover::Step>,
) -> Option<crate::api::MigrationStatus> {
    let spec = observation.ms.spec.migrate_from.as_ref()?;
    match takeover {
        Some(step) => Some(step.status.clone()),
        None => observation
            .last_status()
            .migration
            .filter(|m| m.deployment == spec.deployment),
    }
}

/// What a takeover under way says about the Microservice (a problem or a release speaks
/// first): Progressing while it runs, Degraded once it went back.
fn takeover_assessment(step: &takeover::Step) -> Option<status::Assessment> {
    use crate::api::{MigrationPhase, Phase};
    let (phase, why) = match step.status.phase {
        MigrationPhase::WaitingForPods | MigrationPhase::ScalingDown => {
            (Phase::Progressing, reason::TAKING_OVER)
        }
        MigrationPhase::RolledBack => (Phase::Degraded, reason::TAKEOVER_ROLLED_BACK),
        MigrationPhase::Aborted => (Phase::Degraded, reason::TAKEOVER_ABORTED),
        MigrationPhase::Completed => return None,
    };
    Some(status::Assessment::new(
        phase,
        why,
        step.status.message.clone(),
    ))
}

/// The action value recorded as handled: the annotation's once acted on, kept while the
/// annotation stays, gone with it.
fn handled_action(observation: &Observation, old: &MicroserviceStatus) -> Option<String> {
    match (&observation.pending_action, &observation.action) {
        (Some(value), Some(_)) => Some(value.clone()),
        (Some(_), None) => old.handled_action.clone(),
        (None, _) => None,
    }
}

/// True when the status changed and says something. A new Microservice whose Deployment
/// was just written is not told "waiting for the Deployment controller": that controller's
/// answer is sure to trigger the next reconcile. (After a spec change the Progressing
/// status is written at once: it tells the change was seen.)
pub fn worth_writing(
    old: &MicroserviceStatus,
    new: &MicroserviceStatus,
    applied: &Applied,
) -> bool {
    let awaiting = applied.deployment_written
        && old.observed_generation.is_none()
        && status::ready_reason(new) == Some(reason::WAITING_FOR_CONTROLLER);
    new != old && !awaiting
}

/// True when `new` may wait up to `COUNTS_HELD_FOR` to go out with the next transition: a
/// change of pod counts alone, or a new Microservice's first status while the Deployment
/// controller has not answered (the Service's and its EndpointSlice's events can trigger a
/// reconcile before that controller's does).
pub fn may_wait(old: &MicroserviceStatus, new: &MicroserviceStatus) -> bool {
    let first_wait = old.observed_generation.is_none()
        && status::ready_reason(new) == Some(reason::WAITING_FOR_CONTROLLER);
    first_wait || status::counts_only(old, new)
}

/// When to look again: at the resync, sooner when blocked by a name conflict (the foreign
/// object is not watched: it lacks Weir's label), or when the release has a deadline (a
/// pause's end, the next analysis round). The scheduler adds nothing to a requeue (the
/// throttle sits in front of the watches' triggers only), so it is acted on when it falls due.
pub fn requeue_after(decision: &Decision, applied: &Applied, resync: Duration) -> Duration {
    let next = match applied.problem {
        Some(Problem::NameConflict { .. }) => CONFLICT_RECHECK,
        _ => resync,
    };
    match decision.requeue {
        Some(wake) => next.min(wake),
        None => next,
    }
}

/// The outcome of a reconcile that stopped before deciding.
pub async fn early(early: &Early, ctx: &Context) -> Action {
    match early {
        Early::CachesNotListed => Action::requeue(CACHES_READY_WAIT),
        Early::Deleting => Action::await_change(),
        Early::Unreadable(object) => {
            unreadable(object, ctx).await;
            Action::await_change()
        }
    }
}

/// An object that does not read as a Microservice: say so in an event and, where the API
/// server allows it, its status, unless that was said already; then wait for a change.
async fn unreadable(object: &Unreadable, ctx: &Context) {
    let Unreadable {
        namespace,
        name,
        generation,
        reference,
        error,
        reported,
    } = object;
    let message =
        format!("The stored object cannot be read as a Microservice: {error}. Fix the spec.");
    if reported.as_deref() == Some(message.as_str()) {
        return;
    }
    tracing::warn!(%name, %namespace, %error, "unreadable Microservice");
    let warning = event(
        EventType::Warning,
        reason::INVALID_SPEC,
        "Reconcile",
        message.clone(),
    );
    publish_about(ctx, reference, warning).await;
    let status = status::unreadable(*generation, &message, Timestamp::now());
    // The API server validates the whole object on a status write, so an object that fails
    // today's schema cannot take a status at all: the event is then the report, and retrying
    // would only repeat it. Either way, wait for the spec to change.
    if let Err(error) = write_status(&ctx.client, namespace, name, &status).await {
        tracing::warn!(%name, %namespace, %error, "cannot write the status of an unreadable Microservice");
    }
}

fn microservices(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<Microservice>(&());
    Api::namespaced_with(client.clone(), namespace, &resource)
}

async fn write_status(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &MicroserviceStatus,
) -> Result<DynamicObject, Cause> {
    let patch = json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "Microservice",
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let api = microservices(client, namespace);
    Ok(api
        .patch_status(name, &params, &Patch::Apply(&patch))
        .await?)
}

/// Removes the `weir.dev/action` annotation once its action is recorded.
async fn clear_action(client: &Client, namespace: &str, name: &str) -> Result<(), Cause> {
    let patch = json!({"metadata": {"annotations": {ACTION_ANNOTATION: null}}});
    microservices(client, namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Phase, Slot};
    use crate::build::traffic::Split;
    use crate::release::{ReleaseFields, SlotPlan, TrafficPlan};
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    fn observation(annotation: Option<&str>, handled: Option<&str>) -> Observation {
        let mut ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "pay", "namespace": "shop", "uid": "u1", "generation": 1,
                         "annotations": annotation.map(|a| json!({ACTION_ANNOTATION: a}))},
            "spec": {"image": "a:1", "replicas": 2}
        }))
        .unwrap();
        ms.status = handled.map(|h| MicroserviceStatus {
            handled_action: Some(h.into()),
            ..Default::default()
        });
        Observation::bare(ms, "r1", "2026-01-01T00:00:00Z".parse().unwrap())
    }

    fn decision(requeue: Option<Duration>) -> Decision {
        Decision {
            fields: ReleaseFields::default(),
            active_plan: SlotPlan::Template(2),
            other_plan: SlotPlan::Delete,
            traffic: TrafficPlan {
                split: Split {
                    stable: Slot::Blue,
                    candidate: Slot::Green,
                    weight: 0,
                    header_route: vec![],
                    mirror_percent: 0,
                },
                service_slot: Some(Slot::Blue),
                preview: false,
            },
            requeue,
            notes: vec![],
            abort: None,
            held_back: None,
            gate: None,
        }
    }

    #[test]
    fn a_conflict_and_a_deadline_bring_the_next_look_forward() {
        let resync = Duration::from_secs(300);
        let quiet = Applied::default();
        assert_eq!(requeue_after(&decision(None), &quiet, resync), resync);
        let conflict = Applied {
            problem: Some(Problem::NameConflict {
                kind: "Service",
                name: "pay".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            requeue_after(&decision(None), &conflict, resync),
            CONFLICT_RECHECK
        );
        let pause_ends = decision(Some(Duration::from_secs(30)));
        assert_eq!(
            requeue_after(&pause_ends, &quiet, resync),
            Duration::from_secs(30)
        );
        let soon = decision(Some(Duration::from_millis(500)));
        assert_eq!(
            requeue_after(&soon, &quiet, resync),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn an_action_is_recorded_once_acted_on_and_forgotten_with_its_annotation() {
        let old = |o: &Observation| o.last_status();
        let acted = observation(Some("promote"), None);
        assert_eq!(
            handled_action(&acted, &old(&acted)).as_deref(),
            Some("promote")
        );
        let kept = observation(Some("promote"), Some("promote"));
        assert_eq!(
            handled_action(&kept, &old(&kept)).as_deref(),
            Some("promote")
        );
        let gone = observation(None, Some("promote"));
        assert_eq!(handled_action(&gone, &old(&gone)), None);
    }

    #[test]
    fn a_new_microservice_waits_for_its_deployment_before_its_first_status() {
        let observation = observation(None, None);
        let decision = decision(None);
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "pay-blue", "generation": 1},
            "spec": {"replicas": 2, "selector": {}, "template": {}}
        }))
        .unwrap();
        let written = Applied {
            created: vec!["Deployment pay-blue".into()],
            deployment_written: true,
            active_deployment: Some((&deployment).into()),
            ..Default::default()
        };
        let new = next_status(&observation, &decision, None, &written);
        assert_eq!(
            status::ready_reason(&new),
            Some(reason::WAITING_FOR_CONTROLLER)
        );
        assert!(!worth_writing(&observation.last_status(), &new, &written));
        assert!(
            may_wait(&observation.last_status(), &new),
            "nor at once by the reconciles other watches trigger"
        );

        let seen = MicroserviceStatus {
            observed_generation: Some(1),
            ..Default::default()
        };
        assert!(
            worth_writing(&seen, &new, &written),
            "a spec change is told at once"
        );
        assert!(!may_wait(&seen, &new));
        let blocked = Applied {
            problem: Some(Problem::GatewayApiMissing),
            ..Default::default()
        };
        let degraded = next_status(&observation, &decision, None, &blocked);
        assert_eq!(degraded.phase, Some(Phase::Degraded));
        assert!(worth_writing(
            &observation.last_status(),
            &degraded,
            &blocked
        ));
        assert!(!may_wait(&observation.last_status(), &degraded));
        assert!(
            !worth_writing(&degraded, &degraded, &blocked),
            "nothing new"
        );
    }
}
