//! Report: tells what the reconcile did and where the Microservice stands. Events for the
//! children created and deleted and for the release's moments; the status, written only
//! when it changed and remembered until the cache has it; the manual action cleared once
//! recorded; and when to look again.

use std::time::Duration;

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
use super::events::{announce, event, publish_about, publish_notes, publish_transition_events};
use super::observe::{Early, Observation, Unreadable};
use super::problem::Problem;
use super::status::{self, Facts};
use crate::api::{Microservice, MicroserviceStatus, conditions::reason};
use crate::build::labels::FIELD_MANAGER;
use crate::release::{ACTION_ANNOTATION, Decision};

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
    let new = next_status(observation, &plan.decision, applied);
    if worth_writing(&old, &new, applied) {
        publish_transition_events(ms, &old, &new, ctx).await;
        let written =
            write_status(&ctx.client, &observation.namespace, &observation.name, &new).await?;
        if let Some(version) = written.resource_version() {
            ctx.own_writes.record(&observation.uid, &version, new);
        }
    }
    if observation.pending_action.is_some() {
        clear_action(&ctx.client, &observation.namespace, &observation.name).await?;
    }
    let next = requeue_after(&plan.decision, applied, ctx.resync, ctx.debounce);
    Ok(Action::requeue(next))
}

/// The status after this reconcile.
pub fn next_status(
    observation: &Observation,
    decision: &Decision,
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
    };
    status::compute(ms, facts, observation.now)
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

/// When to look again: at the resync, sooner when blocked by a name conflict (the foreign
/// object is not watched: it lacks Weir's label), or when the release has a deadline (a
/// pause's end, the next analysis round), less the debounce the scheduler adds back, so
/// that it is acted on when it falls due.
pub fn requeue_after(
    decision: &Decision,
    applied: &Applied,
    resync: Duration,
    debounce: Duration,
) -> Duration {
    let next = match applied.problem {
        Some(Problem::NameConflict { .. }) => CONFLICT_RECHECK,
        _ => resync,
    };
    match decision.requeue {
        Some(wake) => next.min(wake.saturating_sub(debounce)),
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
