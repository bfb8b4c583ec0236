//! The watches of ConfigMaps and Secrets a Microservice may track. The caches keep each
//! object's metadata and a hash of its content, never the content: Secrets stay out of the
//! operator's memory, and a cluster's ConfigMaps cost little. A change of one triggers the
//! Microservices of its namespace that track and reference it.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use super::watches::{ChildStream, Watched, without_errors};
use crate::build::config::{
    self, CONTENT_HASH_ANNOTATION, ConfigKind, config_map_content, content_hash, secret_content,
};

/// The caches of tracked kinds; None for a kind the operator does not track.
#[derive(Clone, Default)]
pub struct ConfigCaches {
    pub config_maps: Option<Store<ConfigMap>>,
    pub secrets: Option<Store<Secret>>,
}

/// A kind whose content the cache replaces by its hash.
pub trait Tracked:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: ConfigKind;
    /// Drops the content, leaving its hash in an annotation.
    fn keep_hash_only(&mut self);
}

impl Tracked for ConfigMap {
    const KIND: ConfigKind = ConfigKind::ConfigMap;
    fn keep_hash_only(&mut self) {
        let hash = content_hash(&config_map_content(self));
        self.annotations_mut()
            .insert(CONTENT_HASH_ANNOTATION.into(), hash);
        self.data = None;
        self.binary_data = None;
    }
}

impl Tracked for Secret {
    const KIND: ConfigKind = ConfigKind::Secret;
    fn keep_hash_only(&mut self) {
        let hash = content_hash(&secret_content(self));
        self.annotations_mut()
            .insert(CONTENT_HASH_ANNOTATION.into(), hash);
        self.data = None;
        self.string_data = None;
    }
}

/// The cache of kind `K` in `namespace` (all when None), and its stream of changes.
pub fn watch<K: Tracked>(client: &Client, namespace: Option<&str>) -> (Store<K>, ChildStream<K>) {
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (cache, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|object: &mut K| {
            object.keep_hash_only();
            object.managed_fields_mut().clear();
            object
                .annotations_mut()
                .remove("kubectl.kubernetes.io/last-applied-configuration");
        })
        .reflect(writer)
        .touched_objects();
    let stream = without_errors(stream, K::kind(&()).into_owned()).boxed();
    (cache, stream)
}

/// The watch of kind `K` when the operator tracks it; else no cache and no changes.
pub fn watch_if<K: Tracked>(
    tracked: bool,
    client: &Client,
    namespace: Option<&str>,
) -> (Option<Store<K>>, ChildStream<K>) {
    if !tracked {
        return (None, futures::stream::empty().boxed());
    }
    let (cache, stream) = watch::<K>(client, namespace);
    (Some(cache), stream)
}

/// The controller's mapper from a change of kind `K` to the Microservices it concerns.
pub fn referencing<K: Tracked>(
    microservices: &Store<Watched>,
) -> impl Fn(K) -> Vec<ObjectRef<Watched>> + Send + Sync + 'static {
    let microservices = microservices.clone();
    move |object| microservices_referencing(&microservices, &object)
}

/// The Microservices of `object`'s namespace that track its kind and reference it.
pub fn microservices_referencing<K: Tracked>(
    microservices: &Store<Watched>,
    object: &K,
) -> Vec<ObjectRef<Watched>> {
    let name = object.name_any();
    let namespace = object.namespace();
    microservices
        .state()
        .into_iter()
        .filter(|w| w.namespace() == namespace)
        .filter_map(|w| {
            let ms = w.0.as_ref().ok()?;
            let tracks = config::tracked(ms, true, true).kinds.contains(&K::KIND);
            (tracks && config::references(ms, K::KIND).contains(&name))
                .then(|| ObjectRef::from_obj(&*w))
        })
        .collect()
}
