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
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::Error;
use super::apply::{Applied, ensure, owned_by, remove};
use super::events::{Changes, event, publish, publish_about, publish_transition_events};
use super::own_writes::OwnWrites;
use super::release as cluster;
use super::status::{self, Observed, Problem};
use crate::analysis::Measurer;
use crate::api::{Microservice, MicroserviceStatus, Slot, conditions::reason};
use crate::build::{self, Defaults, labels::FIELD_MANAGER, traffic};
use crate::release::{
    self, ACTION_ANNOTATION, Decision, Router, SlotPlan, TrafficPlan, parse_action,
};
use crate::telemetry::{Metrics, ReconcileOutcome};
use gateway_api::httproutes::HttpRoute;

/// How soon a Microservice blocked by a name conflict looks again.
const CONFLICT_RECHECK: Duration = Duration::from_secs(5);

/// The watch caches of Weir's children (labelled `app.kubernetes.io/managed-by=weir`).
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
    pub horizontal_pod_autoscalers: Store<HorizontalPodAutoscaler>,
    /// None when the cluster does not serve Gateway API HTTPRoutes.
    pub http_routes: Option<Store<HttpRoute>>,
}

/// Shared by every reconcile, built once at start.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub caches: Caches,
    pub defaults: Defaults,
    pub resync: Duration,
    pub measurer: Measurer,
    /// The controller's debounce, which it adds to every requeue too.
    pub debounce: Duration,
    /// Statuses written that the Microservice cache may not have seen yet.
    pub own_writes: Arc<OwnWrites>,
}

/// How long a reconcile waits for the child caches' first listing before trying later.
const CACHES_READY_WAIT: Duration = Duration::from_secs(10);

impl Caches {
    /// Waits until every cache holds its first full listing: deciding from an empty one
    /// would take a running release's candidate for missing (after a restart, say).
    async fn wait_until_ready(&self) -> bool {
        let routes = async {
            match &self.http_routes {
                Some(routes) => routes.wait_until_ready().await.is_ok(),
                None => true,
            }
        };
        let all = async {
            let (d, s, p, h, r) = futures::join!(
                self.deployments.wait_until_ready(),
                self.services.wait_until_ready(),
                self.pod_disruption_budgets.wait_until_ready(),
                self.horizontal_pod_autoscalers.wait_until_ready(),
                routes,
            );
            d.is_ok() && s.is_ok() && p.is_ok() && h.is_ok() && r
        };
        tokio::time::timeout(CACHES_READY_WAIT, all)
            .await
            .unwrap_or(false)
    }
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
    if !ctx.caches.wait_until_ready().await {
        tracing::warn!(name = %object.name_any(), %namespace, "the child caches are not listed yet; trying later");
        return Ok(Action::requeue(CACHES_READY_WAIT));
    }
    // The watch delivers raw objects so that one that no longer reads as a Microservice
    // (stored under an older schema) is reported here instead of breaking the whole watch.
    let mut ms: Microservice =
        match serde_json::from_value(serde_json::to_value(object).unwrap_or_default()) {
            Ok(ms) => ms,
            Err(error) => {
                return report_unreadable(object, &namespace, ctx, &error.to_string()).await;
            }
        };
    if ms.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ms.name_any();
    let uid = ms.uid().unwrap_or_default();
    let cached_version = ms.resource_version().unwrap_or_default();
    if let Some(written) = ctx.own_writes.newer_than(&uid, &cached_version) {
        ms.status = Some(written);
    }
    let old_status = ms.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let revision = build::revision(&ms, &ctx.defaults);
    let router = release::router(&ms);

    // A manual action is acted on once: its value is recorded in status before the
    // annotation is removed, so a restart in between cannot act on it twice.
    let pending = ms.annotations().get(ACTION_ANNOTATION).cloned();
    let action = pending
        .as_ref()
        .filter(|value| old_status.handled_action.as_ref() != Some(*value))
        .map(|value| parse_action(value));

    let blue = cluster::slot_state(&ctx.caches.deployments, &namespace, &name, Slot::Blue);
    let green = cluster::slot_state(&ctx.caches.deployments, &namespace, &name, Slot::Green);
    let live_route = ctx.caches.http_routes.as_ref().and_then(|routes| {
        routes
            .get(&ObjectRef::new(&name).within(&namespace))
            .map(|r| (*r).clone())
    });
    let live_service = ctx
        .caches
        .services
        .get(&ObjectRef::new(&name).within(&namespace))
        .map(|s| (*s).clone());
    let total = build::effective_replicas(&ms);
    let verified = |traffic: &TrafficPlan| {
        let active = traffic.split.stable;
        let (stable, candidate) = match active {
            Slot::Blue => (&blue, &green),
            Slot::Green => (&green, &blue),
        };
        match router {
            Router::GatewayApi => cluster::route_carries(&ms, live_route.as_ref(), traffic),
            Router::ReplicaRatio => cluster::pods_carry(
                &ms,
                live_service.as_ref(),
                traffic,
                stable,
                candidate,
                total,
            ),
        }
    };

    // Measure when a round is due, before deciding (the decision reads the results), and
    // once more if the decision just reached an analysis gate.
    let mut current = ms.clone();
    let mut measured = false;
    if let Some(names) = release::due_measurement(&current, now) {
        let measurements = cluster::measure(ctx, &current, &names).await;
        record(&mut current, measurements, now);
        measured = true;
    }
    let observed = release::Inputs {
        now,
        revision: revision.clone(),
        blue: blue.clone(),
        green: green.clone(),
        verified: &verified,
        action: action.clone(),
    };
    let mut decision = release::decide(&current, &observed);
    if !measured {
        let mut status = current.status.clone().unwrap_or_default();
        decision.fields.clone().write_into(&mut status);
        current.status = Some(status);
        let gate = release::at_gate(&current);
        if let Some(names) = release::due_measurement(&current, now).filter(|_| gate) {
            let measurements = cluster::measure(ctx, &current, &names).await;
            record(&mut current, measurements, now);
            let again = release::Inputs {
                action: None,
                ..observed
            };
            let mut next = release::decide(&current, &again);
            decision.notes.append(&mut next.notes);
            next.notes = std::mem::take(&mut decision.notes);
            decision = next;
        }
    }

    let mut changes = Changes::default();
    let mut written_active = None;
    let foreign_parent = cluster::foreign_parent(&ms);
    let problem = if let Some(parent) = foreign_parent {
        Some(Problem::Missing {
            reason: reason::FOREIGN_PARENT,
            message: format!(
                "rollout.traffic.gatewayAPI names Service {parent} as a parent: a Microservice \
                 may only route through its own Service, {name}."
            ),
        })
    } else if router == Router::GatewayApi && ctx.caches.http_routes.is_none() {
        Some(Problem::Missing {
            reason: reason::GATEWAY_API_MISSING,
            message: "rollout.traffic.gatewayAPI is set, but this cluster does not serve \
                      HTTPRoutes (gateway.networking.k8s.io/v1). Install the Gateway API \
                      CRDs, then restart Weir."
                .into(),
        })
    } else {
        apply_children(
            &ms,
            &namespace,
            &decision,
            ctx,
            &mut changes,
            &mut written_active,
        )
        .await?
    };
    let deployment_written = changes.deployment_written;
    changes.announce(&ms, ctx).await;
    for note in &decision.notes {
        let type_ = if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(
            ctx,
            &ms,
            event(type_, note.reason, "Release", note.message.clone()),
        )
        .await;
    }

    // A conflicting object is not watched (it lacks Weir's label), so look again soon.
    let mut next = match problem {
        Some(Problem::NameConflict { .. }) => CONFLICT_RECHECK,
        _ => ctx.resync,
    };
    // A deadline (a pause's end, the next analysis round) is requeued early by the debounce
    // the scheduler adds back, so that it is acted on when it falls due.
    if let Some(wake) = decision.requeue {
        next = next.min(wake.saturating_sub(ctx.debounce));
    }
    let active = decision.fields.active_slot;
    // The Deployment as just written, if it was: the cache may not have seen the write yet,
    // and a stale copy would report the old rollout as done.
    let active_deployment = written_active.or_else(|| {
        ctx.caches
            .deployments
            .get(&ObjectRef::new(&build::deployment_name(&name, active)).within(&namespace))
            .map(|d| (*d).clone())
    });
    let observed = Observed {
        deployment: active_deployment.as_ref(),
        active,
        problem,
        replicas_contested_by: status::replicas_contested_by(&ms),
        release: cluster::assessment(&ms, &decision, &revision, &old_status),
    };
    let mut new_status = status::compute(&ms, &observed, now);
    decision.fields.write_into(&mut new_status);
    new_status.handled_action = match (&pending, &action) {
        (Some(value), Some(_)) => Some(value.clone()),
        (Some(_), None) => old_status.handled_action.clone(),
        (None, _) => None,
    };
    // A new Microservice whose Deployment was just written: its controller's answer is sure
    // to trigger the next reconcile, so a "waiting for it" status would say nothing. (After a
    // spec change the Progressing status is written at once: it tells the change was seen.)
    let awaiting = deployment_written
        && old_status.observed_generation.is_none()
        && status::ready_reason(&new_status) == Some(reason::WAITING_FOR_CONTROLLER);
    if new_status != old_status && !awaiting {
        publish_transition_events(&ms, &old_status, &new_status, ctx).await;
        let written = write_status(ctx, &namespace, &name, &new_status).await?;
        if let Some(version) = written.resource_version() {
            ctx.own_writes.record(&uid, &version, new_status);
        }
    }
    if pending.is_some() {
        clear_action(ctx, &namespace, &name).await?;
    }
    Ok(Action::requeue(next))
}

/// Adds a round of measurements to the running release in `ms`'s status.
fn record(ms: &mut Microservice, measurements: Vec<crate::api::Measurement>, now: Timestamp) {
    if let Some(release) = ms.status.as_mut().and_then(|s| s.release.as_mut()) {
        release::record_round(release, measurements, now);
    }
}

/// Removes the `weir.dev/action` annotation once its action is recorded.
async fn clear_action(ctx: &Context, namespace: &str, name: &str) -> Result<(), Error> {
    let resource = kube::discovery::ApiResource::erase::<Microservice>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let patch = json!({"metadata": {"annotations": {ACTION_ANNOTATION: null}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Applies every wanted child and deletes unwanted ones, in an order that keeps traffic
/// safe: the slots' Deployments first (pods take longest), then the Services and the route
/// that send traffic to them, then what guards and scales them. Stops at the first name
/// conflict or refusal, which the status then reports.
async fn apply_children(
    ms: &Microservice,
    namespace: &str,
    decision: &Decision,
    ctx: &Context,
    changes: &mut Changes,
    written_active: &mut Option<Deployment>,
) -> Result<Option<Problem>, Error> {
    let name = ms.name_any();
    let client = &ctx.client;
    let caches = &ctx.caches;
    let active = decision.fields.active_slot;
    let traffic = &decision.traffic;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    for (slot, plan) in [
        (active, &decision.active_plan),
        (release::other(active), &decision.other_plan),
    ] {
        match apply_slot(ms, &deployments, slot, plan, ctx, changes).await? {
            Err(problem) => return Ok(Some(problem)),
            Ok(written) if slot == active => *written_active = written,
            Ok(_) => {}
        }
    }

    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let gateway = release::router(ms) == Router::GatewayApi;
    let wanted_services = [
        (name.clone(), true, traffic.service_slot),
        (
            traffic::slot_service_name(&name, Slot::Blue),
            gateway,
            Some(Slot::Blue),
        ),
        (
            traffic::slot_service_name(&name, Slot::Green),
            gateway,
            Some(Slot::Green),
        ),
        (
            format!("{name}-preview"),
            traffic.preview,
            Some(traffic.split.candidate),
        ),
    ];
    for (service_name, wanted, slot) in wanted_services {
        let desired = wanted
            .then(|| build::service(ms, &service_name, slot))
            .flatten();
        let problem = sync_named(
            ms,
            &services,
            &caches.services,
            &service_name,
            desired,
            changes,
        )
        .await?;
        if problem.is_some() {
            return Ok(problem);
        }
    }
    if let Some(routes) = &caches.http_routes {
        let api: Api<HttpRoute> = Api::namespaced(client.clone(), namespace);
        let desired = gateway.then(|| cluster::route_for(ms, traffic));
        let problem = sync_named(ms, &api, routes, &name, desired, changes).await?;
        if problem.is_some() {
            return Ok(problem);
        }
    }

    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let problem = sync(
        ms,
        &pdbs,
        &caches.pod_disruption_budgets,
        build::pod_disruption_budget(ms),
        changes,
    )
    .await?;
    if problem.is_some() {
        return Ok(problem);
    }
    sync(
        ms,
        &hpas,
        &caches.horizontal_pod_autoscalers,
        build::horizontal_pod_autoscaler(ms),
        changes,
    )
    .await
}

/// Brings one slot's Deployment to its plan: built from the spec, scaled only (its template
/// is an older revision that must not change), left alone, or deleted.
async fn apply_slot(
    ms: &Microservice,
    api: &Api<Deployment>,
    slot: Slot,
    plan: &SlotPlan,
    ctx: &Context,
    changes: &mut Changes,
) -> Result<Result<Option<Deployment>, Problem>, Error> {
    let uid = ms.uid().unwrap_or_default();
    let namespace = ms.namespace().unwrap_or_default();
    let name = build::deployment_name(&ms.name_any(), slot);
    let cache = &ctx.caches.deployments;
    match plan {
        SlotPlan::Template(replicas) => {
            let desired = build::slot_deployment(ms, slot, *replicas, &ctx.defaults);
            match ensure(api, cache, &uid, &desired).await? {
                Ok(applied) => {
                    changes.note(&applied);
                    Ok(Ok(match applied {
                        Applied::Unchanged(_) => None,
                        Applied::Created(d) | Applied::Updated(d) => {
                            changes.deployment_written = true;
                            Some(d)
                        }
                    }))
                }
                Err(problem) => Ok(Err(problem)),
            }
        }
        SlotPlan::Scale(replicas) => {
            let live = cache.get(&ObjectRef::new(&name).within(&namespace));
            let Some(live) = live else {
                return Ok(Ok(None));
            };
            let current = live.spec.as_ref().and_then(|s| s.replicas);
            if !owned_by(&*live, &uid) || current == Some(*replicas) {
                return Ok(Ok(None));
            }
            let patch = json!({"spec": {"replicas": replicas}});
            let scaled = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            Ok(Ok(Some(scaled)))
        }
        SlotPlan::Keep => Ok(Ok(None)),
        SlotPlan::Delete => {
            if remove(api, cache, &namespace, &name, &uid).await? {
                changes.deleted.push(format!("Deployment {name}"));
            }
            Ok(Ok(None))
        }
    }
}

/// Applies `desired` as the object `name`, or deletes Weir's object of that name when it
/// is not wanted.
async fn sync_named<K: super::apply::Child>(
    ms: &Microservice,
    api: &Api<K>,
    cache: &Store<K>,
    name: &str,
    desired: Option<K>,
    changes: &mut Changes,
) -> Result<Option<Problem>, Error> {
    let uid = ms.uid().unwrap_or_default();
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
            if remove(api, cache, &namespace, name, &uid).await? {
                changes.deleted.push(format!("{} {name}", K::KIND));
            }
            Ok(None)
        }
    }
}

/// Applies `desired`, or deletes Weir's object of that kind named after the Microservice
/// when it is not wanted.
async fn sync<K: super::apply::Child>(
    ms: &Microservice,
    api: &Api<K>,
    cache: &Store<K>,
    desired: Option<K>,
    changes: &mut Changes,
) -> Result<Option<Problem>, Error> {
    sync_named(ms, api, cache, &ms.name_any(), desired, changes).await
}

async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &MicroserviceStatus,
) -> Result<DynamicObject, Error> {
    let resource = kube::discovery::ApiResource::erase::<Microservice>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let patch = json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "Microservice",
        "status": status,
    });
    Ok(api
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?)
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
