//! Configuration released like code, in the reconcile: observe points the spec's references
//! at snapshots named after the content the watch cache shows; apply makes the missing
//! snapshots before the slots that mount them, and deletes those no slot references.

use std::collections::{BTreeMap, BTreeSet};

use super::cache_form::CachedDeployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::children::owned_by;
use super::context::Context;
use super::error::Cause;
use crate::api::{Microservice, Slot};
use crate::build::config::{
    self, CONTENT_HASH_ANNOTATION, ConfigKind, config_map_content, content_hash, secret_content,
};
use crate::build::deployment_name;

/// A snapshot the spec now points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub kind: ConfigKind,
    pub source: String,
    pub snapshot: String,
    pub hash: String,
}

/// What observe found of the tracked configuration.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub wanted: Vec<Wanted>,
    /// Kinds the spec asks to track that the operator does not allow.
    pub refused: Vec<ConfigKind>,
    /// Whether the spec tracks anything at all (then snapshots are pruned).
    pub tracking: bool,
}

/// The Microservice with its tracked references pointing at their snapshots, and what they
/// are. A referenced object that does not exist keeps its reference (the pods then wait for
/// it, as they would without tracking).
pub fn observe(ms: Microservice, ctx: &Context) -> (Microservice, View) {
    let tracked = config::tracked(
        &ms,
        ctx.config.secrets.is_some(),
        ctx.config.config_maps.is_some(),
    );
    let mut view = View {
        refused: tracked.refused,
        tracking: !tracked.kinds.is_empty(),
        ..View::default()
    };
    let name = ms.name_any();
    let namespace = ms.namespace().unwrap_or_default();
    let mut ms = ms;
    for kind in tracked.kinds {
        let mut renamed = BTreeMap::new();
        for source in config::references(&ms, kind) {
            let Some(hash) = cached_hash(ctx, kind, &namespace, &source) else {
                continue;
            };
            let snapshot = config::snapshot_name(&name, &source, &hash);
            renamed.insert(source.clone(), snapshot.clone());
            view.wanted.push(Wanted {
                kind,
                source,
                snapshot,
                hash,
            });
        }
        ms = config::substitute(&ms, kind, &renamed);
    }
    (ms, view)
}

fn cached_hash(ctx: &Context, kind: ConfigKind, namespace: &str, name: &str) -> Option<String> {
    match kind {
        ConfigKind::ConfigMap => hash_in(ctx.config.config_maps.as_ref()?, namespace, name),
        ConfigKind::Secret => hash_in(ctx.config.secrets.as_ref()?, namespace, name),
    }
}

/// The content hash the cache keeps for object `name`.
fn hash_in<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    namespace: &str,
    name: &str,
) -> Option<String> {
    let object = store.get(&ObjectRef::new(name).within(namespace))?;
    object.annotations().get(CONTENT_HASH_ANNOTATION).cloned()
}

/// Creates the snapshots that do not exist yet, from their sources as they are now. A source
/// that changed since the cache saw it stops the apply: the slot would mount a snapshot of
/// content nobody asked for; the cache's next event brings the reconcile that makes it.
pub async fn ensure_snapshots(
    ms: &Microservice,
    view: &View,
    ctx: &Context,
) -> Result<Vec<String>, Cause> {
    let namespace = ms.namespace().unwrap_or_default();
    let mut created = Vec::new();
    for wanted in &view.wanted {
        if cached_hash(ctx, wanted.kind, &namespace, &wanted.snapshot).is_some() {
            continue;
        }
        let made = match wanted.kind {
            ConfigKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
                let source = api.get(&wanted.source).await?;
                check(wanted, content_hash(&config_map_content(&source)))?;
                create(
                    &api,
                    config::config_map_snapshot(ms, &source, &wanted.snapshot),
                )
                .await?
            }
            ConfigKind::Secret => {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
                let source = api.get(&wanted.source).await?;
                check(wanted, content_hash(&secret_content(&source)))?;
                create(&api, config::secret_snapshot(ms, &source, &wanted.snapshot)).await?
            }
        };
        if made {
            created.push(format!("{} {}", wanted.kind.as_str(), wanted.snapshot));
        }
    }
    Ok(created)
}

fn check(wanted: &Wanted, hash: String) -> Result<(), Cause> {
    if hash == wanted.hash {
        return Ok(());
    }
    Err(Cause::ConfigMoved(format!(
        "{} {} changed while its snapshot was being made; trying again",
        wanted.kind.as_str(),
        wanted.source
    )))
}

/// Creates `object`; one that exists already (made by an earlier reconcile) is fine.
async fn create<K>(api: &Api<K>, object: K) -> Result<bool, Cause>
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the Microservice's snapshots that neither slot's pod template nor the spec
/// references: an abort, a promotion and the warm return keep what a slot still mounts.
pub async fn prune(
    ms: &Microservice,
    view: &View,
    ctx: &Context,
    uid: &str,
) -> Result<Vec<String>, Cause> {
    if !view.tracking {
        return Ok(Vec::new());
    }
    let name = ms.name_any();
    let namespace = ms.namespace().unwrap_or_default();
    let mut kept: BTreeSet<String> = view.wanted.iter().map(|w| w.snapshot.clone()).collect();
    for slot in [Slot::Blue, Slot::Green] {
        let key = ObjectRef::new(&deployment_name(&name, slot)).within(&namespace);
        if let Some(deployment) = ctx.caches.deployments.get(&key) {
            kept.extend(mounted(&deployment));
        }
    }
    let mut deleted = Vec::new();
    if let Some(store) = &ctx.config.config_maps {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
        deleted.extend(prune_kind(&api, store, &name, &namespace, uid, &kept).await?);
    }
    if let Some(store) = &ctx.config.secrets {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        deleted.extend(prune_kind(&api, store, &name, &namespace, uid, &kept).await?);
    }
    Ok(deleted)
}

/// Every name a Deployment's pod template references, of either kind.
fn mounted(deployment: &CachedDeployment) -> BTreeSet<String> {
    let spec = deployment.spec.as_ref();
    let spec: serde_json::Value = spec
        .and_then(|spec| serde_json::from_str(spec.get()).ok())
        .unwrap_or_default();
    let template = &spec["template"];
    let mut names = BTreeSet::new();
    for kind in [ConfigKind::ConfigMap, ConfigKind::Secret] {
        names.extend(config::references_in(template, kind));
    }
    names
}

async fn prune_kind<K>(
    api: &Api<K>,
    store: &Store<K>,
    ms: &str,
    namespace: &str,
    uid: &str,
    kept: &BTreeSet<String>,
) -> Result<Vec<String>, Cause>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut deleted = Vec::new();
    let unused = store.state().into_iter().filter(|o| {
        o.namespace().as_deref() == Some(namespace)
            && config::is_snapshot_of(&**o, ms)
            && owned_by(&**o, uid)
            && !kept.contains(&o.name_any())
    });
    for object in unused {
        let name = object.name_any();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted.push(format!("{} {name}", K::kind(&()))),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}
