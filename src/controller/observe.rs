//! Observe: one Microservice as the cluster shows it, from the watch caches, with the
//! newest status this process wrote. Nothing here writes; everything later reads the
//! `Observation` and not the cluster.

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject};
use kube::core::error_boundary::InvalidObject;
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::cache_form::CachedDeployment;
use super::context::{CACHES_READY_WAIT, Context};
use super::error::Cause;
use super::gateway_features;
use super::watches::Watched;
use crate::api::{Microservice, MicroserviceStatus, RouteKind, Slot, TemplatedMetric};
use crate::build::traffic::slot_service_name;
use crate::build::{self, REVISION_ANNOTATION, deployment_name};
use crate::release::{ACTION_ANNOTATION, HoldBack, ManualAction, Router, SlotState, parse_action};

/// What the observe stage found.
pub enum Observed {
    Microservice(Box<Observation>),
    /// Nothing to decide now.
    Early(Early),
}

/// Why a reconcile stops before deciding anything.
pub enum Early {
    /// The child caches have not finished their first listing within `CACHES_READY_WAIT`.
    CachesNotListed,
    /// Being deleted: garbage collection removes the children.
    Deleting,
    /// The stored object does not read as a Microservice.
    Unreadable(Box<Unreadable>),
}

/// A stored object that does not read as a Microservice (stored under an older schema).
pub struct Unreadable {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub reference: ObjectReference,
    /// Why it does not read.
    pub error: String,
    /// The status message it carries, from an earlier report.
    pub reported: Option<String>,
}

/// One Microservice and what the cluster shows of it.
pub struct Observation {
    /// The Microservice, with the newest status: the cached one, or the one this process
    /// wrote last when the cache has not seen that write yet.
    pub ms: Microservice,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub now: Timestamp,
    /// The revision the spec asks for.
    pub revision: String,
    pub router: Router,
    pub blue: SlotState,
    pub green: SlotState,
    /// The route `<name>` of the spec's kind (HTTPRoute or GRPCRoute), as JSON, when the
    /// cluster serves that kind and it exists.
    pub live_route: Option<serde_json::Value>,
    /// Service `<name>`.
    pub live_service: Option<Service>,
    /// Whether the cluster serves the Gateway API route kind the spec asks for.
    pub gateway_api: bool,
    /// The `weir.dev/action` annotation as set.
    pub pending_action: Option<String>,
    /// The manual action to act on: the annotation, unless its value was handled already.
    pub action: Option<ManualAction>,
    /// A GatewayClass of the route's Gateways that does not implement RequestMirror.
    pub mirror_unsupported_by: Option<String>,
    /// The metrics that name a MetricTemplate, resolved against the templates now, or why
    /// they cannot be.
    pub templates: Result<Vec<TemplatedMetric>, HoldBack>,
    /// The takeover of `spec.migrateFrom`, while one runs with consent.
    pub takeover: Option<super::takeover::View>,
    /// The tracked ConfigMaps and Secrets: the snapshots `ms`'s spec now points at.
    pub config: super::config::View,
    /// Why releases are frozen here: the operator's `--freeze`, or the namespace's
    /// `weir.dev/freeze` annotation.
    pub freeze: Option<String>,
    /// The other members of the spec's release group.
    pub group: Option<crate::release::group::Group>,
}

impl Observation {
    /// The status as last written (empty for a new Microservice).
    pub fn last_status(&self) -> MicroserviceStatus {
        self.ms.status.clone().unwrap_or_default()
    }

    pub fn slot(&self, slot: Slot) -> &SlotState {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }
}

#[cfg(test)]
impl Observation {
    /// An observation of `ms` with no children yet, for tests of the later stages.
    pub fn bare(ms: Microservice, revision: &str, now: Timestamp) -> Self {
        Observation {
            namespace: ms.namespace().unwrap_or_default(),
            name: ms.name_any(),
            uid: ms.uid().unwrap_or_default(),
            now,
            revision: revision.into(),
            router: crate::release::router(&ms),
            blue: SlotState::default(),
            green: SlotState::default(),
            live_route: None,
            live_service: None,
            gateway_api: true,
            pending_action: ms.annotations().get(ACTION_ANNOTATION).cloned(),
            action: unhandled_action(&ms),
            mirror_unsupported_by: None,
            templates: Ok(Vec::new()),
            takeover: None,
            config: Default::default(),
            freeze: None,
            group: None,
            ms,
        }
    }
}

/// Reads what the reconcile of `object` needs, or says why it stops early.
pub async fn observe(object: &Watched, ctx: &Context) -> Result<Observed, Cause> {
    let namespace = object.namespace().ok_or(Cause::MissingNamespace)?;
    if !ctx.caches.wait_until_ready().await {
        tracing::warn!(name = %object.name_any(), %namespace, wait = ?CACHES_READY_WAIT, "the child caches are not listed yet; trying later");
        return Ok(Observed::Early(Early::CachesNotListed));
    }
    let ms = match &object.0 {
        Ok(ms) => ms,
        Err(invalid) => {
            let unreadable = unreadable(object, invalid, namespace, ctx).await?;
            return Ok(Observed::Early(Early::Unreadable(Box::new(unreadable))));
        }
    };
    if ms.metadata.deletion_timestamp.is_some() {
        return Ok(Observed::Early(Early::Deleting));
    }
    let mut ms = ms.clone();
    let uid = ms.uid().unwrap_or_default();
    if let Some(written) = ctx
        .own_writes
        .newer_than(&uid, &ms.resource_version().unwrap_or_default())
    {
        ms.status = Some(written);
    }
    if super::templates::uses_templates(&ms)
        && let Some(templates) = &ctx.metric_templates
        && tokio::time::timeout(CACHES_READY_WAIT, templates.wait_until_ready())
            .await
            .is_err()
    {
        tracing::warn!(name = %ms.name_any(), %namespace, "the MetricTemplate cache is not listed yet; trying later");
        return Ok(Observed::Early(Early::CachesNotListed));
    }
    // The spec as built: tracked references point at snapshots of their content, so a new
    // content is a new revision.
    let (ms, config) = super::config::observe(ms, ctx);
    let mut observation = from_caches(ms, namespace, uid, ctx);
    observation.config = config;
    observation.mirror_unsupported_by = mirror_unsupported_by(&observation, ctx).await;
    observation.takeover = super::takeover::observe(&observation.ms, &ctx.client).await?;
    observation.freeze = freeze(&observation, ctx).await?;
    observation.group = super::groups::view(&observation.ms, &ctx.microservices, &ctx.own_writes);
    Ok(Observed::Microservice(Box::new(observation)))
}

/// The annotation on a namespace that freezes its releases; its value is the reason.
pub const FREEZE_ANNOTATION: &str = "weir.dev/freeze";

/// Why releases are frozen for this Microservice: the operator's flag, else its namespace's
/// annotation, read only while a release may run (no read at rest, none on a first deploy).
async fn freeze(observation: &Observation, ctx: &Context) -> Result<Option<String>, Cause> {
    if let Some(reason) = &ctx.freeze {
        return Ok(Some(reason.clone()));
    }
    if !ctx.namespace_freeze || !release_may_run(&observation.ms, &observation.revision) {
        return Ok(None);
    }
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(ctx.client.clone());
    // A namespace that cannot be read freezes nothing: aborts and rollbacks must never wait
    // on a missing right.
    let namespace = match namespaces.get_metadata(&observation.namespace).await {
        Ok(namespace) => namespace,
        Err(error) => {
            tracing::warn!(namespace = %observation.namespace, %error, "cannot read the namespace's weir.dev/freeze annotation; not frozen");
            return Ok(None);
        }
    };
    Ok(namespace
        .annotations()
        .get(FREEZE_ANNOTATION)
        .map(|reason| match reason.trim() {
            "" => "the namespace carries weir.dev/freeze".to_string(),
            reason => reason.to_string(),
        }))
}

/// The GatewayClass that lacks the mirror, asked only while a release of a spec with mirror
/// steps runs through Gateway API (two reads per Gateway parent).
async fn mirror_unsupported_by(observation: &Observation, ctx: &Context) -> Option<String> {
    let ms = &observation.ms;
    let releasing = traffic_may_move(ms, &observation.revision);
    if observation.router != Router::GatewayApi || !releasing || !gateway_features::mirrors(ms) {
        return None;
    }
    gateway_features::class_lacking(&ctx.client, ms, gateway_features::REQUEST_MIRROR).await
}

/// Whether traffic may move between the slots: a release runs, or the spec asks for a
/// revision other than the stable one (a release is about to start, or a return).
fn traffic_may_move(ms: &Microservice, revision: &str) -> bool {
    ms.status
        .as_ref()
        .is_some_and(|s| s.release.is_some() || s.stable_revision.as_deref() != Some(revision))
}

/// Whether a release may run, which only a freeze can hold: one runs under a progressive
/// spec, or the spec asks for one (`release::asks_for_release`: never on a first deploy, so
/// its reconciles do not read the namespace).
fn release_may_run(ms: &Microservice, revision: &str) -> bool {
    let progressive = crate::release::is_progressive(ms);
    ms.status.as_ref().is_some_and(|s| {
        (progressive && s.release.is_some())
            || crate::release::asks_for_release(progressive, s.stable_revision.as_deref(), revision)
    })
}

/// The observation of a readable Microservice, from the caches.
fn from_caches(ms: Microservice, namespace: String, uid: String, ctx: &Context) -> Observation {
    let name = ms.name_any();
    let caches = &ctx.caches;
    let kind = crate::build::traffic::route_kind(&ms);
    let (live_route, gateway_api) = match kind {
        RouteKind::HttpRoute => live_json(caches.http_routes.as_ref(), &namespace, &name),
        RouteKind::GrpcRoute => live_json(caches.grpc_routes.as_ref(), &namespace, &name),
    };
    let router = crate::release::router(&ms);
    let revision = build::revision(&ms, &ctx.defaults);
    // Endpoints matter while traffic moves between slots; reading them only then keeps a
    // steady reconcile from scanning every slice of the namespace.
    let moving = router == Router::GatewayApi && traffic_may_move(&ms, &revision);
    // One read of the cache for both slots.
    let slices = if moving {
        caches.endpoint_slices.state()
    } else {
        Vec::new()
    };
    let slot = |slot: Slot| {
        let state = slot_state(&caches.deployments, &namespace, &name, slot);
        match router {
            Router::GatewayApi if moving => {
                let service = slot_service_name(&name, slot);
                let of_service = slices.iter().filter(|s| {
                    s.metadata.namespace.as_deref() == Some(namespace.as_str())
                        && s.labels().get(SERVICE_NAME_LABEL) == Some(&service)
                });
                reachable(state, ready_endpoints(of_service.map(|s| s.as_ref())))
            }
            _ => state,
        }
    };
    Observation {
        now: Timestamp::now(),
        revision,
        router,
        blue: slot(Slot::Blue),
        green: slot(Slot::Green),
        live_route,
        live_service: cached(&caches.services, &namespace, &name).map(|s| s.typed()),
        gateway_api,
        pending_action: ms.annotations().get(ACTION_ANNOTATION).cloned(),
        action: unhandled_action(&ms),
        mirror_unsupported_by: None,
        templates: super::templates::resolve(&ms, ctx.metric_templates.as_ref()).and_then(
            |resolved| {
                ctx.measurer
                    .may_use_credentials(&ms, &resolved)
                    .map(|()| resolved)
            },
        ),
        takeover: None,
        config: Default::default(),
        freeze: None,
        group: None,
        ms,
        namespace,
        name,
        uid,
    }
}

/// Route `name` from `cache` as JSON, and whether the cluster serves its kind at all.
fn live_json<K>(
    cache: Option<&Store<K>>,
    namespace: &str,
    name: &str,
) -> (Option<serde_json::Value>, bool)
where
    K: Resource<DynamicType = ()> + Clone + serde::Serialize,
{
    let live = cache
        .and_then(|routes| cached(routes, namespace, name))
        .and_then(|route| serde_json::to_value(route).ok());
    (live, cache.is_some())
}

fn cached<K>(cache: &Store<K>, namespace: &str, name: &str) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone,
{
    cache
        .get(&ObjectRef::new(name).within(namespace))
        .map(|object| (*object).clone())
}

/// The manual action to act on. An action is acted on once: its value is recorded in
/// status before the annotation is removed, so a restart in between cannot act on it twice.
pub fn unhandled_action(ms: &Microservice) -> Option<ManualAction> {
    let handled = ms.status.as_ref().and_then(|s| s.handled_action.as_ref());
    ms.annotations()
        .get(ACTION_ANNOTATION)
        .filter(|value| handled != Some(*value))
        .map(|value| parse_action(value))
}

/// The label the EndpointSlice controller puts on each slice: its Service's name.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Ready endpoints across a Service's EndpointSlices (an endpoint whose `ready` is unset
/// counts as ready, as the API defines it).
pub fn ready_endpoints<'a>(slices: impl Iterator<Item = &'a EndpointSlice>) -> i32 {
    let ready = slices
        .flat_map(|slice| slice.endpoints.iter().flatten())
        .filter(|endpoint| {
            let conditions = endpoint.conditions.as_ref();
            conditions.and_then(|c| c.ready).unwrap_or(true)
        })
        .count();
    i32::try_from(ready).unwrap_or(i32::MAX)
}

/// A slot as a gateway can reach it: its ready pods count only once their endpoints are
/// ready too. The endpoint controller publishes a ready pod a moment later, and a gateway
/// given a weight for a Service without endpoints sends that share elsewhere (or fails it).
pub fn reachable(state: SlotState, ready_endpoints: i32) -> SlotState {
    let ready = state.ready.min(ready_endpoints);
    SlotState {
        settled: state.settled && ready == state.ready,
        ready,
        ..state
    }
}

/// What a slot's Deployment shows, from the cache.
fn slot_state(
    cache: &Store<CachedDeployment>,
    namespace: &str,
    name: &str,
    slot: Slot,
) -> SlotState {
    match cached(cache, namespace, &deployment_name(name, slot)) {
        Some(deployment) => slot_state_of(&deployment),
        None => SlotState::default(),
    }
}

/// What a Deployment shows: its pod count, and how many ready pods run its current template.
pub fn slot_state_of(deployment: &CachedDeployment) -> SlotState {
    let replicas = deployment.numbers().replicas.unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let seen = status.observed_generation >= deployment.metadata.generation;
    let pods = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    // While a new template rolls, ready pods may run the old one: count none.
    let current = seen && updated >= pods;
    // Never more than the spec asks for: after a scale-down, the status of the new
    // generation may still count the pods being removed as ready (the ReplicaSet controller
    // reports the pods it listed before deleting some), and a slot shrunk to its share would
    // seem able to take traffic back that it cannot carry.
    let kept = ready.min(replicas.max(0));
    SlotState {
        exists: true,
        revision: deployment.annotations().get(REVISION_ANNOTATION).cloned(),
        replicas,
        ready: if current { kept } else { 0 },
        settled: current && pods == replicas && ready == replicas,
        observed: seen,
    }
}

/// An object that does not read as a Microservice, with the status message it carries.
/// The watch keeps only its metadata, so the object is read again, whole.
async fn unreadable(
    object: &Watched,
    invalid: &InvalidObject,
    namespace: String,
    ctx: &Context,
) -> Result<Unreadable, Cause> {
    let name = object.name_any();
    let resource = ApiResource::erase::<Microservice>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &resource);
    let stored = api.get_opt(&name).await?;
    let reported = stored
        .as_ref()
        .and_then(|o| o.data.pointer("/status/message")?.as_str())
        .map(str::to_string);
    // serde_json words the error better than the watch's buffered read does.
    let error = stored
        .and_then(|o| read_error(serde_json::to_value(o).ok()?))
        .unwrap_or_else(|| invalid.error.clone());
    Ok(Unreadable {
        generation: object.meta().generation,
        reference: object.object_ref(&()),
        error,
        reported,
        namespace,
        name,
    })
}

/// Why `object` does not read as a Microservice; None when it does.
fn read_error(object: serde_json::Value) -> Option<String> {
    serde_json::from_value::<Microservice>(object)
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
    use serde_json::json;

    fn deployment(replicas: i32, status: DeploymentStatus, generation: i64) -> CachedDeployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(status),
            ..Default::default()
        };
        d.metadata.generation = Some(generation);
        d.annotations_mut()
            .insert(REVISION_ANNOTATION.into(), "abc".into());
        CachedDeployment::from(&d)
    }

    #[test]
    fn a_slot_reaches_a_gateway_only_through_its_ready_endpoints() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.128.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.128.0.2"], "conditions": {"ready": false, "terminating": true}},
                {"addresses": ["10.128.0.3"]},
            ],
        }))
        .unwrap();
        let empty: EndpointSlice = serde_json::from_value(json!({"addressType": "IPv4"})).unwrap();
        assert_eq!(ready_endpoints([&slice, &empty].into_iter()), 2);

        let pods = SlotState {
            exists: true,
            revision: Some("abc".into()),
            replicas: 3,
            ready: 3,
            settled: true,
            observed: true,
        };
        let lagging = reachable(pods.clone(), 2);
        assert_eq!((lagging.ready, lagging.settled), (2, false));
        let published = reachable(pods.clone(), 3);
        assert_eq!(published, pods);
        // More endpoints than ready pods of the current template (old pods still listed)
        // never raise the count.
        let rolling = SlotState {
            ready: 0,
            settled: false,
            ..pods
        };
        assert_eq!(reachable(rolling.clone(), 3), rolling);
    }

    fn counts(observed: i64, pods: i32, updated: i32, ready: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(pods),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            ..Default::default()
        }
    }

    #[test]
    fn a_slot_counts_only_ready_pods_of_its_current_template() {
        let settled = slot_state_of(&deployment(3, counts(2, 3, 3, 3), 2));
        assert_eq!(
            settled,
            SlotState {
                exists: true,
                revision: Some("abc".into()),
                replicas: 3,
                ready: 3,
                settled: true,
                observed: true,
            }
        );
        let rolling = slot_state_of(&deployment(3, counts(2, 4, 2, 3), 2));
        assert_eq!((rolling.ready, rolling.settled), (0, false));
        let unseen = slot_state_of(&deployment(3, counts(1, 3, 3, 3), 2));
        assert_eq!((unseen.ready, unseen.observed), (0, false));
    }

    #[test]
    fn pods_being_removed_by_a_scale_down_are_never_counted_ready() {
        // `stableScale: Dynamic` shrank the stable slot from 4 pods to 1. The Deployment
        // controller has seen the new generation, but the counts it wrote come from the
        // ReplicaSet's status from before its deletions; the EndpointSlice has dropped one of
        // the three pods so far.
        let shrinking = slot_state_of(&deployment(1, counts(2, 4, 4, 4), 2));
        assert_eq!(
            (shrinking.ready, shrinking.settled, shrinking.observed),
            (1, false, true)
        );
        // What an abort then moves traffic back by: one ready pod (25%), not three (75%).
        assert_eq!(reachable(shrinking, 3).ready, 1);
        let shrunk = slot_state_of(&deployment(1, counts(2, 1, 1, 1), 2));
        assert_eq!((shrunk.ready, shrunk.settled), (1, true));
        let scaled_to_zero = slot_state_of(&deployment(0, counts(2, 2, 2, 2), 2));
        assert_eq!(scaled_to_zero.ready, 0);
    }

    #[test]
    fn only_a_release_can_be_frozen_not_a_first_deploy() {
        let mut ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "a"},
            "spec": {"image": "x:1", "rollout": {
                "strategy": "Canary", "canary": {"steps": [{"setWeight": 50}]}
            }}
        }))
        .unwrap();
        assert!(!release_may_run(&ms, "r2"), "no status yet");
        ms.status = Some(MicroserviceStatus::default());
        assert!(
            !release_may_run(&ms, "r2"),
            "first deploy: no stable revision"
        );
        assert!(traffic_may_move(&ms, "r2"));
        ms.status = Some(MicroserviceStatus {
            stable_revision: Some("r2".into()),
            ..Default::default()
        });
        assert!(
            !release_may_run(&ms, "r2"),
            "at rest on its stable revision"
        );
        assert!(
            release_may_run(&ms, "r3"),
            "a new revision starts a release"
        );
    }

    #[test]
    fn an_action_is_acted_on_until_its_value_is_recorded_as_handled() {
        let mut ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "a", "annotations": {ACTION_ANNOTATION: "promote"}},
            "spec": {"image": "x:1"}
        }))
        .unwrap();
        assert_eq!(unhandled_action(&ms), Some(parse_action("promote")));
        ms.status = Some(MicroserviceStatus {
            handled_action: Some("promote".into()),
            ..Default::default()
        });
        assert_eq!(unhandled_action(&ms), None);
    }

    #[test]
    fn an_unreadable_object_is_told_why_in_serde_json_words() {
        let broken = json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "broken"}, "spec": {"image": 42}
        });
        let error = read_error(broken).expect("does not read");
        assert_eq!(error, "invalid type: integer `42`, expected a string");
        let fine = json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "fine"}, "spec": {"image": "x:1"}
        });
        assert_eq!(read_error(fine), None);
    }
}
