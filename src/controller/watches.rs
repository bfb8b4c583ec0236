//! The watches behind the controller: Microservices, and Weir's children with their caches.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::cache_form::{CachedDeployment, CachedService};
use futures::channel::mpsc::UnboundedSender;
use futures::{Stream, StreamExt, TryStreamExt};
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::context::Caches;
use super::own_writes::OwnWrites;
use crate::api::Microservice;
use crate::build::labels::{INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use crate::release::ACTION_ANNOTATION;

/// A Microservice as the watch delivers it: an object that no longer reads as one (stored
/// under an older, looser schema) arrives as its metadata and the reason, to be reported,
/// instead of breaking the watch.
pub type Watched = DeserializeGuard<Microservice>;

/// A child watch's stream of touched objects, which triggers reconciles of their owners.
pub type ChildStream<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The watches of Weir's children: caches for the reconcile, streams that trigger it.
pub struct ChildWatches {
    pub caches: Caches,
    pub deployments: ChildStream<CachedDeployment>,
    pub services: ChildStream<CachedService>,
    pub pdbs: ChildStream<PodDisruptionBudget>,
    pub hpas: ChildStream<HorizontalPodAutoscaler>,
    pub http_routes: ChildStream<HttpRoute>,
    pub grpc_routes: ChildStream<GrpcRoute>,
    /// The slot Services' EndpointSlices (they carry the Service's labels), owned by the
    /// Service rather than the Microservice: mapped back by the instance label.
    pub endpoint_slices: ChildStream<EndpointSlice>,
}

/// The Gateway API route kinds the cluster serves.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteKinds {
    pub http: bool,
    pub grpc: bool,
}

impl ChildWatches {
    /// Starts the watches; routes only of the kinds the cluster serves.
    pub fn start(client: &Client, namespace: Option<&str>, routes: RouteKinds) -> Self {
        let (deployments_cache, deployments) = child_watch::<CachedDeployment>(client, namespace);
        let (services_cache, services) = child_watch::<CachedService>(client, namespace);
        let (pdbs_cache, pdbs) = child_watch::<PodDisruptionBudget>(client, namespace);
        let (hpas_cache, hpas) = child_watch::<HorizontalPodAutoscaler>(client, namespace);
        let (endpoint_slices_cache, endpoint_slices) =
            child_watch::<EndpointSlice>(client, namespace);
        let (http_routes_cache, http_routes) = if routes.http {
            let (cache, stream) = child_watch::<HttpRoute>(client, namespace);
            (Some(cache), stream)
        } else {
            (None, futures::stream::empty().boxed())
        };
        let (grpc_routes_cache, grpc_routes) = if routes.grpc {
            let (cache, stream) = child_watch::<GrpcRoute>(client, namespace);
            (Some(cache), stream)
        } else {
            (None, futures::stream::empty().boxed())
        };
        ChildWatches {
            caches: Caches {
                http_routes: http_routes_cache,
                grpc_routes: grpc_routes_cache,
                deployments: deployments_cache,
                services: services_cache,
                pod_disruption_budgets: pdbs_cache,
                horizontal_pod_autoscalers: hpas_cache,
                endpoint_slices: endpoint_slices_cache,
            },
            deployments,
            services,
            pdbs,
            hpas,
            http_routes,
            grpc_routes,
            endpoint_slices,
        }
    }
}

/// A cached watch of one child kind, narrowed to objects labelled as Weir's, each stored in
/// its cache form (cache_form.rs): the caches are most of the operator's memory.
fn child_watch<K>(client: &Client, namespace: Option<&str>) -> (Store<K>, ChildStream<K>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + super::cache_form::Cached
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let config = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let (cache, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|object: &mut K| object.slim())
        .reflect(writer)
        .touched_objects();
    let stream = without_errors(stream, K::kind(&()).into_owned()).boxed();
    (cache, stream)
}

/// The Microservice an object labelled by Weir belongs to: its instance label, in its
/// namespace. For children another controller owns (the slot Services' EndpointSlices).
pub fn microservice_of_labels<K: Resource>(object: K) -> Option<ObjectRef<Watched>> {
    let name = object.meta().labels.as_ref()?.get(INSTANCE_LABEL)?;
    let namespace = object.meta().namespace.as_deref()?;
    Some(ObjectRef::new(name).within(namespace))
}

/// A watch's stream with its errors logged and dropped. Each watch backs off on its own;
/// an error that reached the Controller would also back off the merged stream of every
/// trigger, for up to a minute after an API server restart, while reconciles ran on stale
/// caches.
pub fn without_errors<K, S>(
    stream: S,
    watch: String,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send
where
    S: futures::Stream<Item = Result<K, watcher::Error>> + Send,
    K: Send,
{
    stream.filter_map(move |item| {
        futures::future::ready(match item {
            Ok(object) => Some(Ok(object)),
            Err(error) => {
                tracing::warn!(watch = watch.as_str(), %error, "watch failed; retrying");
                None
            }
        })
    })
}

/// The Microservices that need a reconcile: on first sight, on a spec change (a new
/// generation) and on a manual action (an annotation); status writes, Weir's own included,
/// do not trigger one. An object that no longer reads as a Microservice passes too, so that
/// it is reported, and does not stop the watch. What `own_writes` kept of a deleted object
/// is dropped.
pub fn microservices(
    api: Api<Watched>,
    writer: reflector::store::Writer<Watched>,
    own_writes: Arc<OwnWrites>,
    group_trigger: UnboundedSender<Watched>,
) -> impl Stream<Item = Result<Watched, watcher::Error>> + Send {
    let watch = watcher(api, watcher::Config::default()).modify(super::cache_form::microservice);
    let stream = reflector(writer, watch)
        .default_backoff()
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(gone) = event {
                own_writes.forget(&gone.uid().unwrap_or_default());
            }
            // A member of a release group that changes (its status too) concerns the others.
            if let watcher::Event::Apply(ms) | watcher::Event::Delete(ms) = event
                && super::groups::group_of(ms).is_some()
            {
                let _ = group_trigger.unbounded_send(ms.clone());
            }
        })
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(action),
            PredicateConfig::default(),
        );
    without_errors(stream, "Microservice".to_string())
}

/// The `weir.dev/action` annotation: a change that is not a new generation.
fn action(ms: &Watched) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    ms.annotations().get(ACTION_ANNOTATION).hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;

    fn ms(uid: &str, generation: i64, action: Option<&str>) -> Watched {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": uid, "namespace": "n", "uid": uid, "generation": generation,
                         "annotations": action.map(|a| json!({ACTION_ANNOTATION: a}))},
            "spec": {"image": "x:1"}
        }))
        .unwrap()
    }

    fn unreadable(uid: &str, generation: i64) -> Watched {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": uid, "namespace": "n", "uid": uid, "generation": generation},
            "spec": {"image": 42}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn only_first_sight_spec_changes_and_actions_trigger_a_reconcile() {
        let seen = [
            ("first sight", ms("a", 1, None)),
            ("a status write", ms("a", 1, None)),
            ("a spec change", ms("a", 2, None)),
            ("an action", ms("a", 2, Some("promote"))),
            ("the same action again", ms("a", 2, Some("promote"))),
            ("the action removed", ms("a", 2, None)),
            ("another object", ms("b", 1, None)),
            ("an unreadable object", unreadable("c", 1)),
            ("its status write", unreadable("c", 1)),
            ("its spec fixed", ms("c", 2, None)),
        ];
        let names: Vec<&str> = seen.iter().map(|(what, _)| *what).collect();
        let events = futures::stream::iter(seen.into_iter().map(|(_, ms)| Ok(ms)));
        let passed: Vec<String> = events
            .predicate_filter(
                predicates::generation.combine(action),
                PredicateConfig::default(),
            )
            .map(|ms: Result<Watched, watcher::Error>| {
                let ms = ms.unwrap();
                format!("{} {:?}", ms.name_any(), ms.meta().generation)
            })
            .collect()
            .await;
        assert_eq!(
            passed,
            [
                "a Some(1)",
                "a Some(2)",
                "a Some(2)",
                "a Some(2)",
                "b Some(1)",
                "c Some(1)",
                "c Some(2)"
            ],
            "of {names:?}"
        );
    }

    #[test]
    fn an_unreadable_object_keeps_its_metadata_and_says_why() {
        let watched = unreadable("c", 3);
        assert_eq!(watched.meta().generation, Some(3));
        let error = watched.0.expect_err("does not read");
        assert!(
            error.error.to_lowercase().contains("invalid type"),
            "{}",
            error.error
        );
    }
}
