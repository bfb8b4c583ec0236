use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::Error;
use super::apply::{Applied, ensure, remove};
use super::events::{Changes, event, publish_about, publish_transition_events};
use super::status::{self, Observed, Problem};
use crate::api::{Microservice, MicroserviceStatus, Slot, conditions::reason};
use crate::build::{self, Defaults, labels::FIELD_MANAGER};
use crate::telemetry::{Metrics, ReconcileOutcome};

/// How soon a Microservice blocked by a name conflict looks again.
const CONFLICT_RECHECK: Duration = Duration::from_secs(5);

/// The watch caches of Weir's children (labelled `app.kubernetes.io/managed-by=weir`).
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
    pub horizontal_pod_autoscalers: Store<HorizontalPodAutoscaler>,
}

/// Shared by every reconcile, built once at start.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub caches: Caches,
    pub defaults: Defaults,
    pub resync: Duration,
}

/// Brings the cluster in line with one Microservice.
pub async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_object(&object, &ctx).await;
    let (outcome, category) = match &result {
        Ok(_) => (ReconcileOutcome::Success, "none"),
        Err(e) => (ReconcileOutcome::Error, e.category()),
    };
    ctx.metrics.observe(outcome, category, started.elapsed());
    result
}

async fn reconcile_object(object: &DynamicObject, ctx: &Context) -> Result<Action, Error> {
    let namespace = object.namespace().ok_or(Error::MissingNamespace)?;
    // The watch delivers raw objects so that one that no longer reads as a Microservice
    // (stored under an older schema) is reported here instead of breaking the whole watch.
    let ms: Microservice =
        match serde_json::from_value(serde_json::to_value(object).unwrap_or_default()) {
            Ok(ms) => ms,
            Err(error) => {
                return report_unreadable(object, &namespace, ctx, &error.to_string()).await;
            }
        };
    if ms.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let old_status = ms.status.clone().unwrap_or_default();
    let active = old_status.active_slot.unwrap_or(Slot::Blue);
    let mut changes = Changes::default();
    let (deployment, problem) = apply_children(&ms, &namespace, active, ctx, &mut changes).await?;
    let deployment_written = changes.deployment_written;
    changes.announce(&ms, ctx).await;

    // A conflicting object is not watched (it lacks Weir's label), so look again soon.
    let next = match problem {
        Some(Problem::NameConflict { .. }) => Action::requeue(CONFLICT_RECHECK),
        _ => Action::requeue(ctx.resync),
    };
    let observed = Observed {
        deployment: deployment.as_ref(),
        active,
        problem,
        replicas_contested_by: status::replicas_contested_by(&ms),
    };
    let new_status = status::compute(&ms, &observed, Timestamp::now());
    // A new Microservice whose Deployment was just written: its controller's answer is sure
    // to trigger the next reconcile, so a "waiting for it" status would say nothing. (After a
    // spec change the Progressing status is written at once: it tells the change was seen.)
    let awaiting = deployment_written
        && old_status.observed_generation.is_none()
        && status::ready_reason(&new_status) == Some(reason::WAITING_FOR_CONTROLLER);
    if new_status != old_status && !awaiting {
        publish_transition_events(&ms, &old_status, &new_status, ctx).await;
        write_status(ctx, &namespace, &ms.name_any(), &new_status).await?;
    }
    Ok(next)
}

/// Applies every wanted child and deletes unwanted ones. Apply order: the Deployment first
/// (pods take longest), then the Service that routes to them, then what guards and scales
/// them. Stops at the first name conflict or refusal, which the status then reports.
async fn apply_children(
    ms: &Microservice,
    namespace: &str,
    active: Slot,
    ctx: &Context,
    changes: &mut Changes,
) -> Result<(Option<Deployment>, Option<Problem>), Error> {
    let uid = ms.uid().unwrap_or_default();
    let name = ms.name_any();
    let client = &ctx.client;
    let caches = &ctx.caches;
    let build::Children {
        deployment,
        service,
        pod_disruption_budget,
        horizontal_pod_autoscaler,
    } = build::children(ms, active, &ctx.defaults);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let live_deployment = match ensure(&deployments, &caches.deployments, &uid, &deployment).await?
    {
        Ok(applied) => {
            changes.note(&applied);
            changes.deployment_written = !matches!(applied, Applied::Unchanged(_));
            applied.object().clone()
        }
        Err(problem) => return Ok((None, Some(problem))),
    };
    let inactive = build::deployment_name(&name, other(active));
    if remove(
        &deployments,
        &caches.deployments,
        namespace,
        &inactive,
        &uid,
    )
    .await?
    {
        changes.deleted.push(format!("Deployment {inactive}"));
    }

    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let mut problem = sync(ms, &services, &caches.services, service, changes).await?;
    if problem.is_none() {
        problem = sync(
            ms,
            &pdbs,
            &caches.pod_disruption_budgets,
            pod_disruption_budget,
            changes,
        )
        .await?;
    }
    if problem.is_none() {
        problem = sync(
            ms,
            &hpas,
            &caches.horizontal_pod_autoscalers,
            horizontal_pod_autoscaler,
            changes,
        )
        .await?;
    }
    Ok((Some(live_deployment), problem))
}

/// Applies `desired`, or deletes Weir's object of that kind and name when it is not wanted.
async fn sync<K: super::apply::Child>(
    ms: &Microservice,
    api: &Api<K>,
    cache: &Store<K>,
    desired: Option<K>,
    changes: &mut Changes,
) -> Result<Option<Problem>, Error> {
    let uid = ms.uid().unwrap_or_default();
    let name = ms.name_any();
    match desired {
        Some(desired) => match ensure(api, cache, &uid, &desired).await? {
            Ok(applied) => {
                changes.note(&applied);
                Ok(None)
            }
            Err(problem) => Ok(Some(problem)),
        },
        None => {
            let namespace = ms.namespace().unwrap_or_default();
            if remove(api, cache, &namespace, &name, &uid).await? {
                let kind = <K as k8s_openapi::Resource>::KIND;
                changes.deleted.push(format!("{kind} {name}"));
            }
            Ok(None)
        }
    }
}

fn other(slot: Slot) -> Slot {
    match slot {
        Slot::Blue => Slot::Green,
        Slot::Green => Slot::Blue,
    }
}

async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &MicroserviceStatus,
) -> Result<(), Error> {
    let resource = kube::discovery::ApiResource::erase::<Microservice>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let patch = json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "Microservice",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// A stored object that does not read as a Microservice: say so in an event and, where the
/// API server allows it, its status; then wait for it to change.
async fn report_unreadable(
    object: &DynamicObject,
    namespace: &str,
    ctx: &Context,
    error: &str,
) -> Result<Action, Error> {
    let name = object.name_any();
    let message =
        format!("The stored object cannot be read as a Microservice: {error}. Fix the spec.");
    let reported = object
        .data
        .pointer("/status/message")
        .and_then(|m| m.as_str());
    if reported == Some(message.as_str()) {
        return Ok(Action::await_change());
    }
    tracing::warn!(%name, %namespace, %error, "unreadable Microservice");
    let resource = kube::discovery::ApiResource::erase::<Microservice>(&());
    let warning = event(
        EventType::Warning,
        reason::INVALID_SPEC,
        "Reconcile",
        message.clone(),
    );
    publish_about(ctx, &object.object_ref(&resource), warning).await;
    let status = status::unreadable(object.metadata.generation, &message, Timestamp::now());
    // The API server validates the whole object on a status write, so an object that fails
    // today's schema cannot take a status at all: the event is then the report, and retrying
    // would only repeat it. Either way, wait for the spec to change.
    if let Err(error) = write_status(ctx, namespace, &name, &status).await {
        tracing::warn!(%name, %namespace, %error, "cannot write the status of an unreadable Microservice");
    }
    Ok(Action::await_change())
}
