//! Writing one child: server-side apply with Weir's field manager, only when something
//! changed, and never to an object Weir does not own.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::{Serialize, de::DeserializeOwned};

use serde_json::Value;

use super::cache_form::{CachedDeployment, CachedService};
use super::drift::{needs_apply, stamp};
use super::error::Cause;
use super::problem::Problem;
use crate::api::ADOPT_ANNOTATION;
use crate::build::labels::FIELD_MANAGER;

/// What happened to one child.
#[derive(Debug)]
pub enum ChildOutcome<K> {
    /// It already was as wanted.
    Unchanged,
    /// Created, as the API server returned it.
    Created(K),
    /// Changed, as the API server returned it.
    Updated(K),
    /// Not written: the problem says why.
    Blocked(Problem),
}

/// Children a reconcile touches, typed; the cache comes from the controller's watches.
pub trait Child:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The kind, for messages and events.
    const KIND: &'static str;
    /// What the watch cache holds of an object of this kind (cache_form.rs).
    type Cached: Resource<DynamicType = ()> + Clone + Send + Sync + 'static;
    /// A cached object as JSON, to compare with what Weir would apply.
    fn cached_json(cached: &Self::Cached) -> serde_json::Result<Value>;
}

macro_rules! child {
    ($($type:ty => $kind:literal),* $(,)?) => {
        $(impl Child for $type {
            const KIND: &'static str = $kind;
            type Cached = Self;
            fn cached_json(cached: &Self) -> serde_json::Result<Value> {
                serde_json::to_value(cached)
            }
        })*
    };
}

child! {
    k8s_openapi::api::policy::v1::PodDisruptionBudget => "PodDisruptionBudget",
    k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
    gateway_api::httproutes::HttpRoute => "HTTPRoute",
    gateway_api::grpcroutes::GrpcRoute => "GRPCRoute",
}

/// The kinds cached with their spec as JSON text (cache_form.rs).
macro_rules! child_with_spec_as_text {
    ($($type:ty => $kind:literal as $cached:ty),* $(,)?) => {
        $(impl Child for $type {
            const KIND: &'static str = $kind;
            type Cached = $cached;
            fn cached_json(cached: &$cached) -> serde_json::Result<Value> {
                cached.to_json()
            }
        })*
    };
}

child_with_spec_as_text! {
    k8s_openapi::api::apps::v1::Deployment => "Deployment" as CachedDeployment,
    k8s_openapi::api::core::v1::Service => "Service" as CachedService,
}

/// What to do with an object of a child's name that Weir does not own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign<'a> {
    /// A name conflict: nothing is written.
    Conflict,
    /// Taken over when it carries `weir.dev/adopt: <this name>` (a takeover's consent).
    Adopt(&'a str),
    /// Left alone for now when it carries that consent; a conflict when it does not.
    Leave(&'a str),
}

/// Makes the child equal to `desired` unless another owner holds its name.
pub async fn ensure<K: Child>(
    api: &Api<K>,
    cache: &Store<K::Cached>,
    owner_uid: &str,
    desired: &K,
) -> Result<ChildOutcome<K>, Cause> {
    ensure_or(api, cache, owner_uid, desired, Foreign::Conflict).await
}

/// `ensure`, with what to do when an object Weir does not own holds the name.
pub async fn ensure_or<K: Child>(
    api: &Api<K>,
    cache: &Store<K::Cached>,
    owner_uid: &str,
    desired: &K,
    foreign: Foreign<'_>,
) -> Result<ChildOutcome<K>, Cause> {
    let name = desired.name_any();
    let serialize = |e| Cause::Serialize(K::KIND, e);
    let stamped = stamp(serde_json::to_value(desired).map_err(serialize)?);
    let namespace = desired.meta().namespace.as_deref().unwrap_or_default();
    let live = match cache.get(&ObjectRef::new(&name).within(namespace)) {
        Some(live) => Some(Live::of(
            &*live,
            owner_uid,
            K::cached_json(&live).map_err(serialize)?,
        )),
        // Not in the watch cache: new, or not ours (the cache only holds Weir's children).
        None => match api.get_opt(&name).await? {
            Some(live) => Some(Live::of(
                &live,
                owner_uid,
                serde_json::to_value(&live).map_err(serialize)?,
            )),
            None => None,
        },
    };
    if let Some(live) = &live {
        if !live.owned {
            match foreign {
                Foreign::Adopt(ms) if live.consents(ms) => {}
                Foreign::Leave(ms) if live.consents(ms) => return Ok(ChildOutcome::Unchanged),
                _ => {
                    return Ok(ChildOutcome::Blocked(Problem::NameConflict {
                        kind: K::KIND,
                        name,
                    }));
                }
            }
        }
        if !needs_apply(&stamped, &live.json) {
            return Ok(ChildOutcome::Unchanged);
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&stamped)).await {
        Ok(applied) if live.is_some() => Ok(ChildOutcome::Updated(applied)),
        Ok(applied) => Ok(ChildOutcome::Created(applied)),
        Err(kube::Error::Api(status)) if refused(status.code, &status.message) => {
            Ok(ChildOutcome::Blocked(Problem::Refused {
                kind: K::KIND,
                message: status.message,
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the API server refused the object itself, so that writing it again cannot help:
/// invalid (422), malformed (400), or a server-side apply it cannot type (500 "failed to
/// create typed patch object", for example two list entries with the same key).
fn refused(code: u16, message: &str) -> bool {
    code == 422
        || code == 400
        || (code == 500 && message.starts_with("failed to create typed patch object"))
}

/// Deletes the named child if Weir owns it; returns whether it deleted anything.
pub async fn remove<K: Child>(
    api: &Api<K>,
    cache: &Store<K::Cached>,
    namespace: &str,
    name: &str,
    owner_uid: &str,
) -> Result<bool, Cause> {
    let key = ObjectRef::new(name).within(namespace);
    let Some(live) = cache.get(&key) else {
        return Ok(false);
    };
    if !owned_by(&*live, owner_uid) {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The live object, from the cache or the API server: whether Weir's Microservice owns it,
/// which Microservice it consents to be adopted by, and its JSON.
struct Live {
    owned: bool,
    adopt: Option<String>,
    json: Value,
}

impl Live {
    fn of<R: Resource>(object: &R, owner_uid: &str, json: Value) -> Live {
        Live {
            owned: owned_by(object, owner_uid),
            adopt: object.annotations().get(ADOPT_ANNOTATION).cloned(),
            json,
        }
    }

    fn consents(&self, microservice: &str) -> bool {
        self.adopt.as_deref() == Some(microservice)
    }
}

/// True when `object` has a controller owner reference to the Microservice with `uid`.
pub fn owned_by<K: Resource>(object: &K, uid: &str) -> bool {
    object
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

#[cfg(test)]
mod tests {
    use super::refused;

    #[test]
    fn an_object_the_server_cannot_type_is_refused_not_retried() {
        assert!(refused(422, "Deployment.apps \"a\" is invalid"));
        assert!(refused(400, "bad request"));
        let untyped = "failed to create typed patch object (n/a; apps/v1, Kind=Deployment): \
                       .spec.template.spec.topologySpreadConstraints: duplicate entries";
        assert!(refused(500, untyped));
        assert!(
            !refused(500, "etcdserver: request timed out"),
            "a server fault is retried"
        );
        assert!(!refused(409, "conflict"));
    }
}
