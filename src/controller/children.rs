//! Writing one child: server-side apply with Weir's field manager, only when something
//! changed, and never to an object Weir does not own.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::{Serialize, de::DeserializeOwned};

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
}

macro_rules! child {
    ($($type:ty => $kind:literal),* $(,)?) => {
        $(impl Child for $type { const KIND: &'static str = $kind; })*
    };
}

child! {
    k8s_openapi::api::apps::v1::Deployment => "Deployment",
    k8s_openapi::api::core::v1::Service => "Service",
    k8s_openapi::api::policy::v1::PodDisruptionBudget => "PodDisruptionBudget",
    k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
    gateway_api::httproutes::HttpRoute => "HTTPRoute",
    gateway_api::grpcroutes::GrpcRoute => "GRPCRoute",
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

/// Whether `object` carries `weir.dev/adopt: <microservice>`.
pub fn consents<K: Resource>(object: &K, microservice: &str) -> bool {
    object
        .annotations()
        .get(ADOPT_ANNOTATION)
        .map(String::as_str)
        == Some(microservice)
}

/// Makes the child equal to `desired` unless another owner holds its name.
pub async fn ensure<K: Child>(
    api: &Api<K>,
    cache: &Store<K>,
    owner_uid: &str,
    desired: &K,
) -> Result<ChildOutcome<K>, Cause> {
    ensure_or(api, cache, owner_uid, desired, Foreign::Conflict).await
}

/// `ensure`, with what to do when an object Weir does not own holds the name.
pub async fn ensure_or<K: Child>(
    api: &Api<K>,
    cache: &Store<K>,
    owner_uid: &str,
    desired: &K,
    foreign: Foreign<'_>,
) -> Result<ChildOutcome<K>, Cause> {
    let name = desired.name_any();
    let stamped = stamp(serde_json::to_value(desired).map_err(|e| Cause::Serialize(K::KIND, e))?);
    let live = match cached(cache, desired) {
        Some(live) => Some(live),
        // Not in the watch cache: new, or not ours (the cache only holds Weir's children).
        None => api.get_opt(&name).await?,
    };
    if let Some(live) = &live {
        if !owned_by(live, owner_uid) {
            match foreign {
                Foreign::Adopt(ms) if consents(live, ms) => {}
                Foreign::Leave(ms) if consents(live, ms) => return Ok(ChildOutcome::Unchanged),
                _ => {
                    return Ok(ChildOutcome::Blocked(Problem::NameConflict {
                        kind: K::KIND,
                        name,
                    }));
                }
            }
        }
        let live_json = serde_json::to_value(live).map_err(|e| Cause::Serialize(K::KIND, e))?;
        if !needs_apply(&stamped, &live_json) {
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
    cache: &Store<K>,
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

fn cached<K: Child>(cache: &Store<K>, desired: &K) -> Option<K> {
    let key = ObjectRef::from_obj(desired);
    cache.get(&key).map(|k| (*k).clone())
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
