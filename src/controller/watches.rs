//! The watches behind the controller: Microservices, and Weir's children with their caches.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::Caches;
use crate::build::labels::{MANAGED_BY, MANAGED_BY_LABEL};

/// A child watch's stream of touched objects, which triggers reconciles of their owners.
pub type ChildStream<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The watches of Weir's children: caches for the reconcile, streams that trigger it.
pub struct ChildWatches {
    pub caches: Caches,
    pub deployments: ChildStream<Deployment>,
    pub services: ChildStream<Service>,
    pub pdbs: ChildStream<PodDisruptionBudget>,
    pub hpas: ChildStream<HorizontalPodAutoscaler>,
}

impl ChildWatches {
    pub fn start(client: &Client, namespace: Option<&str>) -> Self {
        let (deployments_cache, deployments) = child_watch::<Deployment>(client, namespace);
        let (services_cache, services) = child_watch::<Service>(client, namespace);
        let (pdbs_cache, pdbs) = child_watch::<PodDisruptionBudget>(client, namespace);
        let (hpas_cache, hpas) = child_watch::<HorizontalPodAutoscaler>(client, namespace);
        ChildWatches {
            caches: Caches {
                deployments: deployments_cache,
                services: services_cache,
                pod_disruption_budgets: pdbs_cache,
                horizontal_pod_autoscalers: hpas_cache,
            },
            deployments,
            services,
            pdbs,
            hpas,
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
        .touched_objects()
        .boxed();
    (cache, stream)
}

/// Passes an object on only when its generation changed (a spec change, or first sight), so
/// status writes, Weir's own included, do not trigger reconciles. (kube's `predicates`
/// need a static type; Microservices are watched as raw objects.)
pub fn spec_changed() -> impl FnMut(&DynamicObject) -> futures::future::Ready<bool> {
    let mut generations = std::collections::HashMap::<String, Option<i64>>::new();
    move |object| {
        let key = object.uid().unwrap_or_else(|| object.name_any());
        let generation = object.metadata.generation;
        futures::future::ready(generations.insert(key, generation) != Some(generation))
    }
}
