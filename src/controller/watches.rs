//! The watches behind the controller: Microservices, and Weir's children with their caches.

use futures::StreamExt;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};

use super::Caches;
use crate::build::labels::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::release::ACTION_ANNOTATION;

/// A child watch's stream of touched objects, which triggers reconciles of their owners.
pub type ChildStream<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The watches of Weir's children: caches for the reconcile, streams that trigger it.
pub struct ChildWatches {
    pub caches: Caches,
    pub deployments: ChildStream<Deployment>,
    pub services: ChildStream<Service>,
    pub pdbs: ChildStream<PodDisruptionBudget>,
    pub hpas: ChildStream<HorizontalPodAutoscaler>,
    pub http_routes: ChildStream<HttpRoute>,
}

impl ChildWatches {
    /// Starts the watches; HTTPRoutes only when the cluster serves them (`gateway_api`).
    pub fn start(client: &Client, namespace: Option<&str>, gateway_api: bool) -> Self {
        let (deployments_cache, deployments) = child_watch::<Deployment>(client, namespace);
        let (services_cache, services) = child_watch::<Service>(client, namespace);
        let (pdbs_cache, pdbs) = child_watch::<PodDisruptionBudget>(client, namespace);
        let (hpas_cache, hpas) = child_watch::<HorizontalPodAutoscaler>(client, namespace);
        let (http_routes_cache, http_routes) = if gateway_api {
            let (cache, stream) = child_watch::<HttpRoute>(client, namespace);
            (Some(cache), stream)
        } else {
            (None, futures::stream::empty().boxed())
        };
        ChildWatches {
            caches: Caches {
                http_routes: http_routes_cache,
                deployments: deployments_cache,
                services: services_cache,
                pod_disruption_budgets: pdbs_cache,
                horizontal_pod_autoscalers: hpas_cache,
            },
            deployments,
            services,
            pdbs,
            hpas,
            http_routes,
        }
    }
}

/// A cached watch of one child kind, narrowed to objects labelled as Weir's, with
/// managedFields dropped: the cache only needs spec, status and owners, and it is most of
/// the operator's memory.
fn child_watch<K>(client: &Client, namespace: Option<&str>) -> (Store<K>, ChildStream<K>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
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
        .modify(|object: &mut K| object.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    let stream = without_errors(stream, K::kind(&()).into_owned()).boxed();
    (cache, stream)
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

/// The generations (and pending actions) of the Microservices seen, so that only spec
/// changes, actions or first sight trigger reconciles: status writes, Weir's own included, do not. (kube's `predicates` need
/// a static type; Microservices are watched as raw objects.) Deleted objects are forgotten,
/// including those deleted while the watch was down, so the map does not grow for ever.
#[derive(Default)]
pub struct Generations {
    seen: HashMap<String, (Option<i64>, Option<String>)>,
    relisted: Option<HashSet<String>>,
}

impl Generations {
    /// The objects in `event` whose generation changed since they were last seen.
    pub fn changed(&mut self, event: watcher::Event<DynamicObject>) -> Vec<DynamicObject> {
        let key = |object: &DynamicObject| object.uid().unwrap_or_else(|| object.name_any());
        match event {
            watcher::Event::Apply(object) => self.admit(key(&object), object),
            watcher::Event::InitApply(object) => {
                let key = key(&object);
                if let Some(relisted) = self.relisted.as_mut() {
                    relisted.insert(key.clone());
                }
                self.admit(key, object)
            }
            watcher::Event::Delete(object) => {
                self.seen.remove(&key(&object));
                Vec::new()
            }
            watcher::Event::Init => {
                self.relisted = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    self.seen.retain(|key, _| relisted.contains(key));
                }
                Vec::new()
            }
        }
    }

    fn admit(&mut self, key: String, object: DynamicObject) -> Vec<DynamicObject> {
        // A manual action (an annotation) is a change too, though not of the spec.
        let action = object.annotations().get(ACTION_ANNOTATION).cloned();
        let seen = (object.metadata.generation, action);
        if self.seen.get(&key) == Some(&seen) {
            Vec::new()
        } else {
            self.seen.insert(key, seen);
            vec![object]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(uid: &str, generation: i64) -> DynamicObject {
        let mut object = DynamicObject::new(
            uid,
            &kube::discovery::ApiResource::erase::<crate::api::Microservice>(&()),
        );
        object.metadata.uid = Some(uid.into());
        object.metadata.generation = Some(generation);
        object
    }

    #[test]
    fn only_spec_changes_pass_and_deleted_objects_are_forgotten() {
        let mut generations = Generations::default();
        assert_eq!(
            generations.changed(watcher::Event::Apply(ms("a", 1))).len(),
            1,
            "first sight"
        );
        assert_eq!(
            generations.changed(watcher::Event::Apply(ms("a", 1))).len(),
            0,
            "a status write"
        );
        assert_eq!(
            generations.changed(watcher::Event::Apply(ms("a", 2))).len(),
            1,
            "a spec change"
        );
        let mut acted = ms("a", 2);
        acted
            .annotations_mut()
            .insert(ACTION_ANNOTATION.into(), "promote".into());
        assert_eq!(
            generations.changed(watcher::Event::Apply(acted)).len(),
            1,
            "an action"
        );
        generations.changed(watcher::Event::Delete(ms("a", 2)));
        assert!(generations.seen.is_empty());
    }

    #[test]
    fn a_relist_forgets_objects_deleted_while_the_watch_was_down() {
        let mut generations = Generations::default();
        generations.changed(watcher::Event::Apply(ms("a", 1)));
        generations.changed(watcher::Event::Apply(ms("b", 1)));
        generations.changed(watcher::Event::Init);
        assert_eq!(
            generations
                .changed(watcher::Event::InitApply(ms("b", 1)))
                .len(),
            0
        );
        generations.changed(watcher::Event::InitDone);
        assert_eq!(generations.seen.len(), 1);
    }
}
